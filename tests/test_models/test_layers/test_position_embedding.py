"""LayerwisePositionEmbedding as a component other ViT families plug into.

Expected values are written with plain tensor code (F.layer_norm with each
norm's weights, a hand-made patch merging), never by calling the module's
own chain.
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpvg.models.layers import LayerwisePositionEmbedding, sinusoid_table


def ln(module, x):
    return F.layer_norm(x, module.normalized_shape, module.weight,
                        module.bias, module.eps)


def randomise(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 +
                        (1.0 if p.ndim == 1 else 0.))
    return module


class Merge(nn.Module):
    """A 2x2 patch merging: concatenate each 2x2 cell, project."""

    def __init__(self, cin, cout):
        super().__init__()
        self.proj = nn.Linear(4 * cin, cout)

    def forward(self, pe, hw):
        h, w = hw
        x = pe.reshape(1, h, w, -1)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2],
                       x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.proj(x.reshape(1, (h // 2) * (w // 2), -1)), (h // 2,
                                                                    w // 2)


def staged(**kwargs):
    kwargs = dict(dict(num_layers=(2, 3), embed_dims=(8, 16),
                       patch_resolution=(4, 4), first_block=True), **kwargs)
    return randomise(LayerwisePositionEmbedding(**kwargs))


def test_staged_widths_cross_the_stage_transition():
    pe = staged(last_ln_pe=0)
    merge = randomise(Merge(8, 16), seed=1)
    got = pe((4, 4), transitions=[merge])

    pos0 = pe.pos_embed
    n = [pe.norm_of(i) for i in range(5)]
    pos1 = ln(n[0], pos0)
    pos2 = ln(n[1], pos1)
    merged, grid = merge(pos2, (4, 4))
    assert grid == (2, 2)
    pos3 = ln(n[2], merged)
    pos4 = ln(n[3], pos3)
    pos5 = ln(n[4], pos4)
    for got_l, want in zip(got.layers, [pos1, pos2, pos3, pos4, pos5]):
        torch.testing.assert_close(got_l, want)
    assert got.layers[1].shape == (1, 16, 8)
    assert got.layers[2].shape == (1, 4, 16)
    # the Last-LN term: pos_0 brought to the last stage, then LN'_last
    torch.testing.assert_close(got.last,
                               ln(pe.last_norm, merge(pos0, (4, 4))[0]))
    torch.testing.assert_close(got.input, pos0)
    assert [pe.norm_of(i).normalized_shape for i in range(5)] == [
        (8, ), (8, ), (16, ), (16, ), (16, )]
    assert pe.last_norm.normalized_shape == (16, )
    # no parameter of the transition is owned (or saved) by the PE module
    assert not any(k.startswith('proj') or '.proj' in k
                   for k in pe.state_dict())


def test_staged_last_term_from_a_later_step_and_non_hierarchical():
    merge = randomise(Merge(8, 16), seed=1)
    pe = staged(last_ln_pe=2)  # pos_2: the end of stage 0
    got = pe((4, 4), transitions=[merge])
    pos2 = ln(pe.norm_of(1), ln(pe.norm_of(0), pe.pos_embed))
    torch.testing.assert_close(got.last,
                               ln(pe.last_norm, merge(pos2, (4, 4))[0]))

    flat = staged(hierarchical=False, last_ln_pe=None)
    got = flat((4, 4), transitions=[merge])
    base = merge(flat.pos_embed, (4, 4))[0]
    torch.testing.assert_close(got.layers[0],
                               ln(flat.norm_of(0), flat.pos_embed))
    for i in (2, 3, 4):
        torch.testing.assert_close(got.layers[i], ln(flat.norm_of(i), base))
    assert got.last is None


def test_staged_errors():
    pe = staged()
    with pytest.raises(ValueError, match='2 stages need 1 transitions'):
        pe((4, 4))
    with pytest.raises(ValueError, match='cannot have class-token rows'):
        staged(num_extra_tokens=1)
    with pytest.raises(ValueError, match='equal length'):
        LayerwisePositionEmbedding((2, 3), (8, 16, 32), (4, 4))
    with pytest.raises(ValueError, match=r'last_ln_pe=6 must be in \[0, 5\]'):
        staged(last_ln_pe=6)


def test_block_of_names_the_block_a_parameter_serves():
    pe = staged(last_ln_pe=0)
    assert pe.block_of('norms.3.weight') == 3
    assert pe.block_of('last_norm.bias') == 'last'
    assert pe.block_of('pos_embed') == 'input'
    with pytest.raises(KeyError, match='not a parameter'):
        pe.block_of('norm.weight')
    assert pe.norm_of(7) is None and pe.has_last_term
    pe.remove_last_term()
    assert not pe.has_last_term and pe((4, 4), [Merge(8, 16)]).last is None


# ---------------------------------------------------------------------- #
# a fixed (sinusoidal) pos_0
# ---------------------------------------------------------------------- #
def reference_sinusoid(rows, dims):
    table = torch.zeros(rows, dims, dtype=torch.float64)
    for p in range(rows):
        for j in range(dims):
            angle = p / math.pow(10000, 2 * (j // 2) / dims)
            table[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table.float()[None]


def test_sinusoid_table_matches_the_formula():
    torch.testing.assert_close(sinusoid_table(17, 6),
                               reference_sinusoid(17, 6))


@pytest.mark.parametrize('extra,offset', [(1, 0), (0, 1), (0, 0)])
def test_fixed_pos_0(extra, offset):
    pe = LayerwisePositionEmbedding(
        3, 6, (4, 4), num_extra_tokens=extra, pos_embed_type='sinusoidal',
        sinusoid_offset=offset, last_ln_pe=None)
    table = reference_sinusoid(16 + extra + offset, 6)[:, offset:]
    torch.testing.assert_close(pe.pos_embed.detach(), table)
    # counted among the parameters, never trained
    assert not pe.pos_embed.requires_grad
    assert 'pos_embed' in dict(pe.named_parameters())
    # another grid: the table of that grid, not an interpolation
    torch.testing.assert_close(
        pe((3, 5)).input, reference_sinusoid(15 + extra + offset,
                                             6)[:, offset:])
    # the chain normalises the fixed table like a learnable one
    torch.testing.assert_close(pe((4, 4)).layers[1],
                               ln(pe.norm_of(1), table))


def test_fixed_pos_0_from_a_checkpoint_of_another_grid(caplog):
    src = LayerwisePositionEmbedding(2, 6, (2, 2),
                                     pos_embed_type='sinusoidal')
    dst = LayerwisePositionEmbedding(2, 6, (4, 4),
                                     pos_embed_type='sinusoidal')
    table = dst.pos_embed.detach().clone()
    dst.load_state_dict(src.state_dict())
    torch.testing.assert_close(dst.pos_embed.detach(), table)


def test_unknown_pos_embed_type():
    with pytest.raises(ValueError, match="pos_embed_type='rope'"):
        LayerwisePositionEmbedding(2, 6, (2, 2), pos_embed_type='rope')


# ---------------------------------------------------------------------- #
# the inference cache
# ---------------------------------------------------------------------- #
def cached_pe():
    pe = randomise(LayerwisePositionEmbedding(3, 6, (2, 2), last_ln_pe=0))
    pe.enable_inference_cache()
    return pe.eval()


@torch.no_grad()
def test_cache_reuses_and_is_cleared_on_to():
    pe = cached_pe()
    first = pe((2, 2))
    assert pe((2, 2)) is first  # reused
    pe.to(torch.float64)
    again = pe((2, 2))
    assert again is not first and again.layers[1].dtype == torch.float64
    pe.half()
    assert pe((2, 2)).last.dtype == torch.float16


@torch.no_grad()
def test_cache_sees_parameters_changed_in_place():
    pe = cached_pe()
    first = pe((2, 2))
    pe.norm_of(2).weight.mul_(3)  # an in-place edit, no method called
    second = pe((2, 2))
    assert second is not first
    torch.testing.assert_close(second.layers[2],
                               ln(pe.norm_of(2), second.layers[1]))
    pe.pos_embed.copy_(torch.zeros_like(pe.pos_embed))
    assert pe((2, 2)).input.abs().sum() == 0


@torch.no_grad()
def test_cache_sees_a_transition_change_and_loading():
    pe = staged(last_ln_pe=0)
    pe.enable_inference_cache()
    pe.eval()
    merge = randomise(Merge(8, 16), seed=1)
    first = pe((4, 4), [merge])
    assert pe((4, 4), [merge]) is first
    merge.proj.bias.add_(1.0)
    assert pe((4, 4), [merge]) is not first
    state = {k: torch.randn_like(v) for k, v in pe.state_dict().items()}
    before = pe((4, 4), [merge])
    pe.load_state_dict(state)
    after = pe((4, 4), [merge])
    assert after is not before
    torch.testing.assert_close(after.input, state['pos_embed'])


def test_cache_is_off_in_training_and_with_autograd():
    pe = cached_pe()
    with torch.no_grad():
        first = pe((2, 2))
    assert pe((2, 2)) is not first  # autograd on: never cached
    pe.train()
    with torch.no_grad():
        assert pe((2, 2)) is not pe((2, 2))


def test_chain_step_names_pos_k():
    pe = randomise(LayerwisePositionEmbedding(3, 6, (2, 2), last_ln_pe=0))
    pes = pe((2, 2))
    torch.testing.assert_close(pe.chain_step(pes, (2, 2), 0), pe.pos_embed)
    # PVG/MPVG: the chain starts at block 1, so pos_1 is block 1's PE
    assert pe.chain_step(pes, (2, 2), 1) is pes.layers[1]
    assert pe.chain_step(pes, (2, 2), 2) is pes.layers[2]
    with pytest.raises(ValueError, match=r'steps 0\.\.2, got k=3'):
        pe.chain_step(pes, (2, 2), 3)
