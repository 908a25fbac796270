"""Window attention of MPVGViT's blocks (ViTDet / ViT-Adapter style).

References are written with explicit softmax attention, one window at a
time, on a hand-padded grid.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from mmpvg.models import MPVGViT, TransformerBlock

SMALL = dict(embed_dims=16, num_layers=3, num_heads=2, feedforward_channels=24)


def randomise(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.ndim == 1 else 0.))
    return module.eval()


def build(seed=0, **kwargs):
    kwargs.setdefault('arch', SMALL)
    kwargs.setdefault('img_size', 32)
    kwargs.setdefault('patch_size', 8)
    kwargs.setdefault('out_type', 'featmap')
    return randomise(MPVGViT(**kwargs), seed)


def explicit_attention(attn, x):
    B, N, C = x.shape
    h = attn.num_heads
    q, k, v = F.linear(x, attn.qkv.weight, attn.qkv.bias).split(C, -1)
    q, k, v = (t.reshape(B, N, h, C // h).transpose(1, 2) for t in (q, k, v))
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // h), dim=-1)
    return F.linear((w @ v).transpose(1, 2).reshape(B, N, C),
                    attn.proj.weight, attn.proj.bias)


def windowed_block(blk, x, hw, window, pe=None):
    """x + MSA_windows(LN(x) + pe) + MLP, windows by explicit loops."""
    h, w = hw
    a = F.layer_norm(x, x.shape[-1:], blk.norm1.weight, blk.norm1.bias,
                     blk.norm1.eps)
    if pe is not None:
        a = a + pe
    grid = a.reshape(len(x), h, w, -1)
    Hp, Wp = math.ceil(h / window[0]) * window[0], math.ceil(
        w / window[1]) * window[1]
    padded = grid.new_zeros(len(x), Hp, Wp, grid.shape[-1])
    padded[:, :h, :w] = grid  # zeros after the norm + PE sum
    out = torch.zeros_like(padded)
    for i in range(0, Hp, window[0]):
        for j in range(0, Wp, window[1]):
            win = padded[:, i:i + window[0], j:j + window[1]]
            flat = win.reshape(len(x), -1, win.shape[-1])
            out[:, i:i + window[0], j:j + window[1]] = explicit_attention(
                blk.attn, flat).reshape(win.shape)
    x = x + out[:, :h, :w].reshape(x.shape)
    m = F.layer_norm(x, x.shape[-1:], blk.norm2.weight, blk.norm2.bias,
                     blk.norm2.eps)
    return x + F.linear(F.gelu(F.linear(m, blk.mlp.fc1.weight,
                                        blk.mlp.fc1.bias)),
                        blk.mlp.fc2.weight, blk.mlp.fc2.bias)


@pytest.mark.parametrize('hw,window_size,window', [
    ((4, 6), 2, (2, 2)),   # no padding
    ((5, 3), 2, (2, 2)),   # padded to 6 x 4
    ((5, 7), 3, (3, 3)),   # padded to 6 x 9
    ((2, 7), 3, (2, 3)),   # the 2-row side is one window, not padded
])
def test_block_window_attention_matches_explicit_windows(hw, window_size,
                                                         window):
    blk = randomise(TransformerBlock(16, 2, 24, window_size=window_size))
    x = torch.randn(2, hw[0] * hw[1], 16)
    pe = torch.randn(1, hw[0] * hw[1], 16)
    with torch.no_grad():
        torch.testing.assert_close(
            blk(x, pe, hw), windowed_block(blk, x, hw, window, pe),
            rtol=1e-4, atol=1e-4)


def test_tokens_only_attend_within_their_window():
    """On a 4x4 grid with 2x2 windows, perturbing one token changes the
    attention output of exactly its window (the MLP is per token)."""
    blk = randomise(TransformerBlock(16, 2, 24, window_size=2))
    x = torch.randn(1, 16, 16)
    with torch.no_grad():
        ref = blk(x, hw=(4, 4))
        for token in range(16):
            x2 = x.clone()
            x2[0, token] += torch.randn(16)  # not a constant: LN drops it
            changed = (blk(x2, hw=(4, 4)) - ref).abs().amax(-1)[0] > 1e-6
            r, c = divmod(token, 4)
            expected = torch.zeros(4, 4, dtype=torch.bool)
            expected[r // 2 * 2:r // 2 * 2 + 2, c // 2 * 2:c // 2 * 2 + 2] = 1
            assert torch.equal(changed.reshape(4, 4), expected), token


@pytest.mark.parametrize('window_size', [4, 5, 100])
def test_window_at_least_the_grid_is_global_attention(window_size):
    glob = build(pe_mode='mpvg')
    win = build(pe_mode='mpvg', window_size=window_size)
    img = torch.randn(2, 3, 32, 32)  # 4 x 4 tokens
    with torch.no_grad():
        torch.testing.assert_close(win(img)[0], glob(img)[0])


def test_window_and_global_blocks_in_the_backbone():
    m = build(pe_mode='pvg', window_size=2, global_attn_indexes=(-1, ))
    assert [b.window_size for b in m.blocks] == [2, 2, 0]
    assert m.global_attn_indexes == [2]
    img = torch.randn(2, 3, 40, 24)  # 5 x 3 tokens, padded to 6 x 4
    hw = (5, 3)
    pe = m.pe(hw)
    with torch.no_grad():
        x = m.patch_embed(img)[0] + pe.input
        for i, blk in enumerate(m.blocks):
            if blk.window_size:
                x = windowed_block(blk, x, hw, (2, 2), pe.layers[i])
            else:
                x = windowed_block(blk, x, hw, hw, pe.layers[i])  # global
        ref = m.norm(x).transpose(1, 2).reshape(2, 16, *hw)
        torch.testing.assert_close(m(img)[0], ref, rtol=1e-4, atol=1e-4)
        # and it is not global attention
        glob = build(pe_mode='pvg')
        assert not torch.allclose(glob(img)[0], m(img)[0], atol=1e-3)


def test_window_attention_errors():
    with pytest.raises(ValueError, match='needs a model without class'):
        MPVGViT(arch=SMALL, pe_mode='cls', window_size=2)
    with pytest.raises(ValueError, match='needs a model without class'):
        MPVGViT(arch=SMALL, pe_mode='lape', window_size=2)
    # dense class-token modes without their class token are fine
    MPVGViT(arch=SMALL, pe_mode='lape', with_cls_token=False,
            out_type='featmap', window_size=2)
    with pytest.raises(ValueError, match='out of range'):
        MPVGViT(arch=SMALL, window_size=2, global_attn_indexes=(3, ))
    with pytest.raises(ValueError, match='window_size must be'):
        MPVGViT(arch=SMALL, window_size=-1)
    blk = TransformerBlock(16, 2, 24, window_size=2)
    with pytest.raises(ValueError, match='hw=\\(h, w\\)'):
        blk(torch.randn(1, 16, 16))
    with pytest.raises(ValueError, match='class token cannot be windowed'):
        blk(torch.randn(1, 17, 16), hw=(4, 4))
