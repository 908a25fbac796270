"""CeiT's layer-wise class-token attention against its equations (explicit
softmax attention, the module's own weights)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmpvg.models.layers import LayerClassAttention


def randomise(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.ndim == 1 else 0.))
    return module


def ln(norm, x):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def ref_lca(m, tokens):
    """t = T + E; z = t_L + proj(softmax(q_L k^T / sqrt(d)) v) with q, k, v
    from LN_1(t); out = z + MLP(LN_2(z))."""
    B, L, C = tokens.shape
    h = m.num_heads
    t = tokens + (m.layer_embed if m.layer_embed is not None else 0)
    a = ln(m.norm1, t)
    q, k, v = F.linear(a, m.qkv.weight, m.qkv.bias).split(C, -1)
    q, k, v = (u.reshape(B, L, h, C // h).transpose(1, 2) for u in (q, k, v))
    q = q[:, :, -1:]  # only the last layer's token asks
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // h), -1)
    out = (w @ v).transpose(1, 2).reshape(B, 1, C)
    z = t[:, -1:] + F.linear(out, m.proj.weight, m.proj.bias)
    hid = F.gelu(F.linear(ln(m.norm2, z), m.mlp.fc1.weight, m.mlp.fc1.bias))
    return z + F.linear(hid, m.mlp.fc2.weight, m.mlp.fc2.bias)


@pytest.mark.parametrize('layer_embed', [True, False])
def test_lca_matches_equations(layer_embed):
    m = randomise(LayerClassAttention(16, 4, 5, 32,
                                      layer_embed=layer_embed)).eval()
    tokens = torch.randn(3, 5, 16)
    with torch.no_grad():
        out = m(tokens)
    assert out.shape == (3, 1, 16)
    torch.testing.assert_close(out, ref_lca(m, tokens), rtol=1e-4, atol=1e-4)
    assert (m.layer_embed is not None) == layer_embed


def test_layer_embed_starts_at_zero_and_every_layer_matters():
    m = LayerClassAttention(16, 4, 5, 32)
    assert m.layer_embed.shape == (1, 5, 16)
    assert torch.count_nonzero(m.layer_embed) == 0
    m = randomise(m).eval()
    tokens = torch.randn(2, 5, 16)
    changed = tokens.clone()
    changed[:, 1] = torch.randn(2, 16)  # an earlier layer changes the output
    with torch.no_grad():
        assert not torch.allclose(m(tokens), m(changed))


def test_wrong_number_of_layers_and_heads():
    m = LayerClassAttention(16, 4, 5, 32)
    with pytest.raises(ValueError, match='built for 5 layer tokens, got 4'):
        m(torch.randn(1, 4, 16))
    with pytest.raises(ValueError, match='divisible'):
        LayerClassAttention(16, 5, 5, 32)
