"""LeFF (CeiT's locally-enhanced feed-forward) against its equations, with
F.conv2d / F.batch_norm on the module's own weights."""
import pytest
import torch
import torch.nn.functional as F

from mmpvg.models.layers import LeFF, TransformerBlock


def randomise(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.ndim == 1 else 0.))
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return module


def bn(norm, x, training=False):
    return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight,
                        norm.bias, training=training, eps=norm.eps)


def ref_leff(m, x, hw, training=False):
    """1x1 -> BN -> GELU, depthwise kxk -> BN -> GELU, 1x1 -> BN on the grid
    of the patch tokens; the extra rows as ``extra_tokens`` says."""
    B, N, C = x.shape
    h, w = hw
    extra = N - h * w
    p = x[:, extra:].transpose(1, 2).reshape(B, C, h, w)
    p = F.gelu(bn(m.norm1, F.conv2d(p, m.conv1.weight, m.conv1.bias),
                  training))
    k = m.dwconv.weight.shape[-1]
    p = F.gelu(bn(m.norm2, F.conv2d(p, m.dwconv.weight, m.dwconv.bias,
                                    padding=k // 2, groups=p.shape[1]),
                  training))
    p = bn(m.norm3, F.conv2d(p, m.conv2.weight, m.conv2.bias), training)
    p = p.flatten(2).transpose(1, 2)
    head = x[:, :extra] if m.extra_tokens == 'concat' else torch.zeros_like(
        x[:, :extra])
    return torch.cat([head, p], 1)


@pytest.mark.parametrize('extra_tokens', ['bypass', 'concat'])
@pytest.mark.parametrize('extra', [0, 1])
@pytest.mark.parametrize('bias', [True, False])
def test_leff_matches_equations(extra_tokens, extra, bias):
    m = randomise(LeFF(8, 20, kernel_size=3, conv_bias=bias,
                       extra_tokens=extra_tokens)).eval()
    x = torch.randn(2, extra + 5 * 3, 8)
    with torch.no_grad():
        torch.testing.assert_close(m(x, (5, 3)), ref_leff(m, x, (5, 3)),
                                   rtol=1e-4, atol=1e-4)
    assert (m.conv1.bias is not None) == bias
    if extra and extra_tokens == 'bypass':
        assert torch.equal(m(x, (5, 3))[:, 0], torch.zeros(2, 8))


def test_leff_training_uses_batch_statistics():
    m = randomise(LeFF(8, 16, kernel_size=5)).train()
    x = torch.randn(3, 16, 8)
    ref = ref_leff(m, x, (4, 4), training=True)
    torch.testing.assert_close(m(x, (4, 4)), ref, rtol=1e-4, atol=1e-4)


def test_block_with_leff_is_x_plus_msa_then_leff():
    """TransformerBlock(ffn=LeFF): x' = x + MSA(LN_1(x) + pe);
    x'' = x' + LeFF(LN_2(x'), grid); the names stay those of DeiT."""
    torch.manual_seed(0)
    leff = LeFF(8, 16)
    blk = randomise(TransformerBlock(8, 2, None, ffn=leff)).eval()
    assert blk.mlp is leff
    x, pe = torch.randn(2, 1 + 9, 8), torch.randn(1, 10, 8)
    with torch.no_grad():
        a = F.layer_norm(x, (8, ), blk.norm1.weight, blk.norm1.bias, 1e-6)
        x1 = x + blk.attn(a + pe)
        ref = x1 + leff(F.layer_norm(x1, (8, ), blk.norm2.weight,
                                     blk.norm2.bias, 1e-6), (3, 3))
        torch.testing.assert_close(blk(x, pe, (3, 3)), ref)
    plain = TransformerBlock(8, 2, 16)
    assert 'mlp.fc1.weight' in plain.state_dict()


def test_bad_arguments():
    with pytest.raises(ValueError, match='not both or neither'):
        TransformerBlock(8, 2, 16, ffn=LeFF(8, 16))
    with pytest.raises(ValueError, match='not both or neither'):
        TransformerBlock(8, 2, None)
    with pytest.raises(ValueError, match="choose from \\('bypass', 'concat'"):
        LeFF(8, 16, extra_tokens='drop')
    with pytest.raises(ValueError, match='positive odd'):
        LeFF(8, 16, kernel_size=4)
    with pytest.raises(ValueError, match='cannot hold a 4x4 grid'):
        LeFF(8, 16)(torch.randn(1, 10, 8), (4, 4))
