"""The Performer tokens-to-token stem of T2T-ViT against its equations.

The reference below re-computes the stem with plain tensor code: soft
splits by explicit patch gathering (zero padding, then slicing), Performer
attention in its quadratic form (the N x N matrix of kernel products,
normalised by its row sums), the skip connection on v and the MLP. The
module computes the same in the linear O(N) form with ``nn.Unfold``.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from mmpvg.models.layers import T2TModule, TokenPerformer, unfold_grid


def randomise(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith('.w'):  # random features: keep their scale
                continue
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if p.ndim == 1 else 0.))
    return module.eval()


def soft_split(x, k, s, p):
    """(B, C, H, W) -> (B, L, C * k * k), channel-major like nn.Unfold."""
    x = F.pad(x, (p, p, p, p))
    B, C, H, W = x.shape
    rows = range(0, H - k + 1, s)
    cols = range(0, W - k + 1, s)
    patches = [x[:, :, i:i + k, j:j + k].reshape(B, C * k * k)
               for i in rows for j in cols]
    return torch.stack(patches, 1), (len(rows), len(cols))


def ln(norm, x):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def performer(layer, x):
    """k, q, v = kqv(LN_1(x)); phi(z) = exp(w z - |z|^2/2) / sqrt(m);
    A = phi(q) phi(k)^T; y = v + proj(A v / rowsum(A)); y + MLP(LN_2(y))."""
    C = layer.embed_dims
    k, q, v = F.linear(ln(layer.norm1, x), layer.kqv.weight,
                       layer.kqv.bias).split(C, -1)
    m = layer.w.shape[0]

    def phi(z):
        return torch.exp(z @ layer.w.T -
                         (z ** 2).sum(-1, keepdim=True) / 2) / math.sqrt(m)

    A = phi(q) @ phi(k).transpose(1, 2)  # (B, N, N) kernel products
    y = (A @ v) / (A.sum(-1, keepdim=True) + 1e-8)
    y = v + F.linear(y, layer.proj.weight, layer.proj.bias)
    fc1, fc2 = layer.mlp[0], layer.mlp[2]
    h = F.gelu(F.linear(ln(layer.norm2, y), fc1.weight, fc1.bias))
    return y + F.linear(h, fc2.weight, fc2.bias)


def reference(stem, img):
    x, hw = soft_split(img, stem.kernel_sizes[0], stem.strides[0],
                       stem.paddings[0])
    for i in range(1, stem.num_splits):
        x = performer(getattr(stem, f'attention{i}'), x)
        x = x.transpose(1, 2).reshape(len(x), -1, *hw)
        x, hw = soft_split(x, stem.kernel_sizes[i], stem.strides[i],
                           stem.paddings[i])
    return F.linear(x, stem.project.weight, stem.project.bias), hw


@pytest.mark.parametrize('size', [(32, 32), (37, 45)])
def test_stem_matches_the_equations(size):
    torch.set_default_dtype(torch.float64)
    try:
        stem = randomise(T2TModule(embed_dims=24, token_dims=8))
        img = torch.randn(2, 3, *size)
        with torch.no_grad():
            out, hw = stem(img)
            ref, ref_hw = reference(stem, img)
    finally:
        torch.set_default_dtype(torch.float32)
    assert hw == ref_hw == stem.token_grid(size)
    assert out.shape == (2, hw[0] * hw[1], 24)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)


def test_t2t_vit_7_shapes_and_names():
    stem = T2TModule(embed_dims=256)
    a1, a2 = stem.attention1, stem.attention2
    assert (a1.kqv.in_features, a1.kqv.out_features) == (147, 192)
    assert (a2.kqv.in_features, a2.kqv.out_features) == (576, 192)
    assert (stem.project.in_features, stem.project.out_features) == (576, 256)
    assert a1.w.shape == a2.w.shape == (32, 64)  # kernel ratio 0.5
    assert stem.token_grid(224) == (14, 14) and stem.stride == 16
    with torch.no_grad():
        tokens, hw = stem.eval()(torch.randn(1, 3, 224, 224))
    assert tokens.shape == (1, 196, 256) and hw == (14, 14)
    # the official T2T_module's names, so its weights map one to one
    keys = set(stem.state_dict())
    for official in ('attention1.kqv.weight', 'attention1.proj.bias',
                     'attention1.norm1.weight', 'attention1.norm2.bias',
                     'attention1.mlp.0.weight', 'attention1.mlp.2.bias',
                     'attention1.w', 'attention2.w', 'project.weight'):
        assert official in keys, official
    assert [n for n, _ in stem.named_children()][:3] == [
        'soft_split0', 'soft_split1', 'soft_split2']
    assert a1.norm1.eps == 1e-5


def test_random_features_are_fixed_orthogonal_parameters():
    layer = TokenPerformer(147, 64, kernel_ratio=0.5)
    assert isinstance(layer.w, torch.nn.Parameter)
    assert not layer.w.requires_grad
    assert 'w' in dict(layer.named_parameters())  # counted with the others
    m = layer.w.shape[0]
    gram = layer.w @ layer.w.T / m  # rows orthogonal, norm sqrt(m)
    torch.testing.assert_close(gram, torch.eye(m), rtol=1e-4, atol=1e-4)
    x = torch.randn(2, 10, 147, requires_grad=True)
    layer(x).sum().backward()
    assert layer.w.grad is None and layer.kqv.weight.grad is not None


def test_unfold_grid_is_the_unfold_arithmetic():
    for hw, k, s, p in [((224, 224), 7, 4, 2), ((37, 45), 3, 2, 1),
                        ((10, 9), 4, 3, 0)]:
        unfolded = F.unfold(torch.zeros(1, 1, *hw), k, stride=s, padding=p)
        h, w = unfold_grid(hw, k, s, p)
        assert unfolded.shape[-1] == h * w
    with pytest.raises(ValueError, match='too small'):
        T2TModule().token_grid(2)
    with pytest.raises(ValueError, match='too small'):
        T2TModule()(torch.zeros(1, 3, 2, 2))


@pytest.mark.parametrize('kwargs,match', [
    (dict(kernel_sizes=(7, 3), strides=(4, 2, 2)), 'one value per soft'),
    (dict(kernel_sizes=(), strides=(), paddings=()), 'one value per soft'),
    (dict(strides=(0, 2, 2)), '>= 1'),
    (dict(kernel_ratio=0.001), 'no random feature'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        T2TModule(**kwargs)


def test_dropout_only_in_training():
    stem = T2TModule(embed_dims=16, token_dims=8, drop_rate=0.5)
    img = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a, _ = stem.eval()(img)
        b, _ = stem(img)
        assert torch.equal(a, b)
        c, _ = stem.train()(img)
    assert not torch.allclose(a, c)


def test_mixed_precision_keeps_the_kernel_in_float32():
    """exp(w q - |q|^2 / 2) reaches exp(m / 2) (e^16 for T2T-ViT-7's m = 32),
    beyond float16: under autocast the attention runs in float32."""
    torch.manual_seed(0)
    layer = TokenPerformer(27, 64).eval()  # m = 32
    seen = []
    features = layer.kernel_features

    def recording(x):
        seen.append(x.dtype)
        return features(x)

    layer.kernel_features = recording
    x = torch.randn(2, 50, 27)
    with torch.no_grad():
        ref = layer(x)
        with torch.autocast('cpu', dtype=torch.float16):
            mixed = layer(x)
        # q = w_0 / 2 ... w_0: the kernel reaches exp(m / 2) at q = w_0
        q = layer.w[:1, None] * torch.linspace(0, 1, 5)[:, None, None]
        peak = features(q.float()).max() * math.sqrt(32)
    assert seen == [torch.float32] * 4
    assert torch.isfinite(mixed).all()
    torch.testing.assert_close(mixed.float(), ref, rtol=0.02, atol=0.02)
    assert peak > torch.finfo(torch.float16).max  # e^16 = 8.9e6
