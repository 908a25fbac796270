"""MPVGViT against the equations of README.md, "What MPVG is".

Every structure is recomputed here from the equations with plain tensor
operations and the model's own weights (attention as an explicit softmax,
not SDPA), with all parameters randomised so that no LayerNorm is the
identity and hierarchical and non-hierarchical chains differ.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from mmpvg.models import MPVGViT

SMALL = dict(embed_dims=32, num_layers=4, num_heads=4, feedforward_channels=48)


def build(pe_mode='mpvg', seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs.setdefault('arch', SMALL)
    kwargs.setdefault('img_size', 32)
    kwargs.setdefault('patch_size', 8)
    model = MPVGViT(pe_mode=pe_mode, **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.ndim == 1 else 0.))
    return model.eval()


# ---------------------------------------------------------------------- #
# the spec, written out
# ---------------------------------------------------------------------- #
def ln(norm, x):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def attention(attn, x):
    B, N, C = x.shape
    h = attn.num_heads
    q, k, v = (x @ attn.qkv.weight.T + (attn.qkv.bias if attn.qkv.bias
                                        is not None else 0)).split(C, -1)
    q, k, v = (t.reshape(B, N, h, C // h).transpose(1, 2) for t in (q, k, v))
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // h), dim=-1)
    out = (w @ v).transpose(1, 2).reshape(B, N, C)
    return out @ attn.proj.weight.T + attn.proj.bias


def mlp(m, x):
    return F.linear(F.gelu(F.linear(x, m.fc1.weight, m.fc1.bias)),
                    m.fc2.weight, m.fc2.bias)


def block(blk, x, pe=None):
    """x' = x + MSA(LN_l(x) + pe); x_{l+1} = x' + MLP(LN''_l(x'))."""
    a = ln(blk.norm1, x)
    x = x + attention(blk.attn, a if pe is None else a + pe)
    if blk.norm_after_attn:  # ViT-Lite: x = LN_b(x); x = x + MLP(x)
        x = ln(blk.norm2, x)
        return x + mlp(blk.mlp, x)
    return x + mlp(blk.mlp, ln(blk.norm2, x))


def patches(m, img):
    return m.patch_embed.proj(img).flatten(2).transpose(1, 2)


def ref_cls(m, img):
    """x_0 = [cls; p] + pos_0; y = LN_last(x_L); y[cls]."""
    p = patches(m, img)
    x = torch.cat([m.cls_token.expand(len(p), -1, -1), p], 1) + m.pe.pos_embed
    for blk in m.blocks:
        x = block(blk, x)
    return ln(m.norm, x)[:, 0]


def ref_gap(m, img):
    """x_0 = p + pos_0; y = LN_last(x_L) per token; mean over tokens."""
    x = patches(m, img) + m.pe.pos_embed
    for blk in m.blocks:
        x = block(blk, x)
    return ln(m.norm, x).mean(1)


def ref_lape(m, img):
    """x_0 = [cls; p] (no PE); pos_{l+1} = LN'_l(pos_l); block l uses it."""
    p = patches(m, img)
    x = torch.cat([m.cls_token.expand(len(p), -1, -1), p], 1)
    pos = m.pe.pos_embed
    for l, blk in enumerate(m.blocks):
        pos = ln(m.pe.norms[str(l)], pos)
        x = block(blk, x, pos)
    return ln(m.norm, x)[:, 0]


def ref_pvg(m, img, last_term=False):
    """x_0 = p + pos_0; block 0 plain; pos_1 = LN'_1(pos_0), ...; GAP."""
    pos_0 = m.pe.pos_embed
    x = patches(m, img) + pos_0
    x = block(m.blocks[0], x)
    pos = pos_0
    for l in range(1, len(m.blocks)):
        pos = ln(m.pe.norms[str(l)], pos)
        x = block(m.blocks[l], x, pos)
    y = ln(m.norm, x)
    if last_term:  # MPVG: + LN'_last(pos_0), the RAW PE, per token
        y = y + ln(m.pe.last_norm, pos_0)
    return y.mean(1)


def ref_mpvg(m, img):
    return ref_pvg(m, img, last_term=True)


REFERENCES = dict(cls=ref_cls, gap=ref_gap, lape=ref_lape, pvg=ref_pvg,
                  mpvg=ref_mpvg)


@pytest.mark.parametrize('mode', list(REFERENCES))
def test_every_mode_matches_its_equations(mode):
    m = build(mode)
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out, = m(img)
        ref = REFERENCES[mode](m, img)
    assert out.shape == (2, 32)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_number_of_pe_layernorms_per_mode():
    L = SMALL['num_layers']
    counts = {}
    for mode in REFERENCES:
        m = build(mode)
        counts[mode] = (sorted(int(k) for k in m.pe.norms),
                        m.pe.last_norm is not None, m.cls_token is not None)
    assert counts['cls'] == ([], False, True)
    assert counts['gap'] == ([], False, False)
    assert counts['lape'] == (list(range(L)), False, True)  # L PE LNs
    assert counts['pvg'] == (list(range(1, L)), False, False)  # L-1
    assert counts['mpvg'] == (list(range(1, L)), True, False)  # L in total


def test_pvg_block0_gets_no_pe_and_chain_starts_at_pos0():
    m = build('pvg')
    pe = m.pe((4, 4))
    assert pe.layers[0] is None
    pos_0 = m.pe.pos_embed
    torch.testing.assert_close(pe.input, pos_0)
    torch.testing.assert_close(pe.layers[1], ln(m.pe.norms['1'], pos_0))
    torch.testing.assert_close(pe.layers[2], ln(m.pe.norms['2'], pe.layers[1]))
    assert pe.last is None


def test_lape_adds_nothing_at_input():
    m = build('lape')
    pe = m.pe((4, 4))
    assert pe.input is None
    # The class-token row of the PE is normalised with the others.
    assert pe.layers[0].shape == (1, 17, 32)
    torch.testing.assert_close(pe.layers[0], ln(m.pe.norms['0'],
                                                m.pe.pos_embed))


def test_mpvg_pooled_output_is_pvg_plus_gap_of_last_ln_pos0():
    pvg, mpvg = build('pvg', seed=1), build('mpvg', seed=2)
    missing, unexpected = mpvg.load_state_dict(pvg.state_dict(), strict=False)
    assert missing == ['pe.last_norm.weight', 'pe.last_norm.bias']
    assert unexpected == []
    img = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        term = ln(mpvg.pe.last_norm, mpvg.pe.pos_embed).mean(1)
        torch.testing.assert_close(mpvg(img)[0], pvg(img)[0] + term,
                                   rtol=1e-5, atol=1e-5)
        # Per token (what dense heads see) the term is LN'_last(pos_0) itself.
        mpvg.out_type = pvg.out_type = 'raw'
        torch.testing.assert_close(
            mpvg(img)[0] - pvg(img)[0],
            ln(mpvg.pe.last_norm, mpvg.pe.pos_embed).expand(3, -1, -1),
            rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- #
# ablation switches
# ---------------------------------------------------------------------- #
def ref_ablation(m, img, first_block, hierarchical, at_input, last_k,
                 layerwise=True):
    pos_0 = m.pe.pos_embed
    x = patches(m, img) + (pos_0 if at_input else 0)
    pos, chain = pos_0, [pos_0]
    for l, blk in enumerate(m.blocks):
        pe = None
        if layerwise and (first_block or l > 0):
            pos = ln(m.pe.norms[str(l)], pos if hierarchical else pos_0)
            chain.append(pos)
            pe = pos
        x = block(blk, x, pe)
    y = ln(m.norm, x)
    if last_k is not None:
        y = y + ln(m.pe.last_norm, chain[last_k])
    return y.mean(1)


@pytest.mark.parametrize('switches,expected', [
    (dict(pe_first_block=True),
     dict(first_block=True, hierarchical=True, at_input=True, last_k=0)),
    (dict(hierarchical_pe=False),
     dict(first_block=False, hierarchical=False, at_input=True, last_k=0)),
    (dict(pe_at_input=False),
     dict(first_block=False, hierarchical=True, at_input=False, last_k=0)),
    (dict(last_ln_pe=2),
     dict(first_block=False, hierarchical=True, at_input=True, last_k=2)),
    (dict(last_ln_pe=3),  # pos_{L-1}: the last block's PE
     dict(first_block=False, hierarchical=True, at_input=True, last_k=3)),
    (dict(pe_first_block=True, last_ln_pe=4),
     dict(first_block=True, hierarchical=True, at_input=True, last_k=4)),
    (dict(layerwise_pe=False),  # Fig. 5b: GAP + Last-LN PE only
     dict(first_block=False, hierarchical=True, at_input=True, last_k=0,
          layerwise=False)),
])
def test_ablation_switches_match_equations(switches, expected):
    m = build('mpvg', **switches)
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m(img)[0], ref_ablation(m, img, **expected),
                                   rtol=1e-4, atol=1e-4)


def test_fig5b_from_gap_mode_equals_mpvg_without_layerwise():
    a = build('gap', last_ln_pe=0, seed=3)
    b = build('mpvg', layerwise_pe=False, seed=3)
    assert a.state_dict().keys() == b.state_dict().keys()
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(a(img)[0], b(img)[0])


def test_non_hierarchical_differs_from_hierarchical():
    a = build('mpvg', seed=4)
    b = build('mpvg', hierarchical_pe=False, seed=4)
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(a(img)[0], b(img)[0], atol=1e-3)


def test_vit_lite_block_layout_and_defaults():
    m = MPVGViT(arch='vit-lite-7', pe_mode='cls')
    assert m.patch_resolution == (8, 8) and m.pe.pos_embed.shape == (1, 65, 256)
    assert m.blocks[0].attn.qkv.bias is None
    assert m.blocks[0].norm_after_attn
    assert len(m.blocks) == 7
    # PE init std 0.2 (Compact Transformers), DeiT's is 0.02
    assert 0.1 < m.pe.pos_embed.std().item() < 0.25
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if p.ndim == 1 else 0.))
    m.eval()
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m(img)[0], ref_cls(m, img),
                                   rtol=1e-4, atol=1e-4)


def test_deit_init():
    m = MPVGViT(arch='deit-tiny', pe_mode='mpvg')
    assert m.pe.pos_embed.shape == (1, 196, 192)
    assert abs(m.pe.pos_embed.std().item() - 0.02) < 0.003
    # DeiT's trunc_normal_(std=.02) truncates at +-2 absolute, i.e. at 100
    # std: in effect a plain normal. Same here.
    assert abs(m.pe.pos_embed.mean().item()) < 0.002
    for norm in [m.norm, m.pe.last_norm, *m.pe.norms.values(),
                 m.blocks[0].norm1]:
        assert norm.eps == 1e-6
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias))
    fc = m.blocks[3].mlp.fc1
    assert torch.equal(fc.bias, torch.zeros_like(fc.bias))
    assert abs(fc.weight.std().item() - 0.02) < 0.003


def test_attention_uses_sdpa(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', counting)
    m = build('mpvg')
    with torch.no_grad():
        m(torch.randn(1, 3, 32, 32))
    assert len(calls) == SMALL['num_layers']


# ---------------------------------------------------------------------- #
# outputs, grids, checkpoints
# ---------------------------------------------------------------------- #
def test_out_types_and_indices():
    img = torch.randn(2, 3, 40, 24)  # 5 x 3 tokens
    m = build('mpvg', out_type='featmap', out_indices=(0, 1, -1))
    outs = m(img)
    assert [o.shape for o in outs] == [(2, 32, 5, 3)] * 3
    m = build('lape', out_type='raw')
    assert m(img)[0].shape == (2, 16, 32)
    m = build('lape', out_type='featmap')
    assert m(img)[0].shape == (2, 32, 5, 3)
    m = build('pvg', out_type='avg_featmap')
    assert m(img)[0].shape == (2, 32)


def test_input_not_multiple_of_patch_is_padded():
    m = build('mpvg', out_type='featmap')
    assert m(torch.randn(1, 3, 33, 50))[0].shape == (1, 32, 5, 7)


@pytest.mark.parametrize('mode', ['cls', 'lape', 'mpvg'])
def test_runtime_interpolation_equals_loading_at_the_new_grid(mode):
    """A model stored for 4x4 tokens run on 6x8 equals a model built for 6x8
    that loaded the 4x4 checkpoint (resized by the state-dict pre-hook)."""
    small = build(mode, img_size=32)
    big = MPVGViT(arch=SMALL, pe_mode=mode, img_size=(48, 64),
                  patch_size=8).eval()
    big.load_state_dict(small.state_dict())
    assert big.pe.pos_embed.shape[1] == 48 + int(mode != 'mpvg')
    img = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(small(img)[0], big(img)[0])
        # and the resized pos_0 is a bicubic interpolation, not a copy
        ref = F.interpolate(
            small.pe.pos_embed[:, big.num_extra_tokens:].reshape(
                1, 4, 4, 32).permute(0, 3, 1, 2),
            size=(6, 8), mode='bicubic', align_corners=False)
        torch.testing.assert_close(
            big.pe.pos_embed[:, big.num_extra_tokens:],
            ref.flatten(2).transpose(1, 2))


def test_loading_class_token_checkpoint_into_gap_model_drops_that_row():
    cls_model = build('cls')
    gap = MPVGViT(arch=SMALL, pe_mode='gap', img_size=32, patch_size=8)
    state = {k: v for k, v in cls_model.state_dict().items()
             if k != 'cls_token'}
    gap.load_state_dict(state)
    torch.testing.assert_close(gap.pe.pos_embed, cls_model.pe.pos_embed[:, 1:])


def test_bad_checkpoints_give_clear_errors():
    gap = build('gap')
    lape = MPVGViT(arch=SMALL, pe_mode='lape', img_size=32, patch_size=8)
    with pytest.raises(ValueError, match='no class-token row'):
        lape.load_state_dict({'pe.pos_embed': torch.zeros(1, 16, 32)},
                             strict=False)
    with pytest.raises(ValueError, match='width differs'):
        gap.load_state_dict({'pe.pos_embed': torch.zeros(1, 16, 64)},
                            strict=False)
    with pytest.raises(ValueError, match='neither a square'):
        gap.load_state_dict({'pe.pos_embed': torch.zeros(1, 15, 32)},
                            strict=False)


def test_frozen_stages():
    m = build('mpvg', frozen_stages=2)
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert 'pe.pos_embed' in frozen and 'patch_embed.proj.weight' in frozen
    assert 'blocks.1.attn.qkv.weight' in frozen
    assert 'pe.norms.1.weight' in frozen
    assert 'blocks.2.attn.qkv.weight' not in frozen
    assert 'pe.norms.2.weight' not in frozen
    assert 'norm.weight' not in frozen
    assert m.train() is m  # chainable, unlike mmpretrain's BaseBackbone
    assert not m.blocks[1].training and m.blocks[2].training


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, SMALL['num_layers']])
@pytest.mark.parametrize('with_cls_token', [True, False])
def test_frozen_stages_as_mmpretrain(frozen_stages, with_cls_token):
    """The parameters frozen are those mmpretrain's VisionTransformer
    freezes, named as the converter maps them: 0 freezes nothing, k > 0
    the stem and k blocks, all blocks the final norm too."""
    from mmpretrain.models import VisionTransformer

    from mmpvg.converters import convert_mmpretrain_to_mpvg
    out_type = 'cls_token' if with_cls_token else 'featmap'
    theirs = VisionTransformer(arch=SMALL, img_size=64, patch_size=16,
                               with_cls_token=with_cls_token,
                               out_type=out_type,
                               frozen_stages=frozen_stages)
    # the converter returns the very Parameters under MPVGViT's names
    mapped = convert_mmpretrain_to_mpvg(dict(theirs.named_parameters()))
    expected = {k[len('backbone.'):] for k, p in mapped.items()
                if not p.requires_grad}
    ours = build('cls' if with_cls_token else 'gap', out_type=out_type,
                 frozen_stages=frozen_stages)
    frozen = {n for n, p in ours.named_parameters() if not p.requires_grad}
    assert frozen == expected
    assert bool(frozen) == (frozen_stages > 0)


def test_get_layer_depth():
    m = build('mpvg')
    L = SMALL['num_layers']
    depth = {n: m.get_layer_depth('backbone.' + n, 'backbone.')[0]
             for n, _ in m.named_parameters()}
    assert depth['pe.pos_embed'] == 0
    assert depth['patch_embed.proj.weight'] == 0
    assert depth['blocks.0.norm1.weight'] == 1
    assert depth['pe.norms.3.weight'] == depth['blocks.3.mlp.fc2.bias'] == 4
    assert depth['norm.weight'] == depth['pe.last_norm.bias'] == L + 1
    assert m.get_layer_depth('head.fc.weight', 'backbone.') == (L + 1, L + 2)


@pytest.mark.parametrize('kwargs,match', [
    (dict(pe_mode='mpvg', with_cls_token=True), 'incompatible with a class'),
    (dict(pe_mode='cls', with_cls_token=False), 'only for dense outputs'),
    (dict(pe_mode='cls', last_ln_pe=0), 'last_ln_pe needs GAP'),
    (dict(pe_mode='lape', last_ln_pe=True), 'last_ln_pe needs GAP'),
    (dict(pe_mode='vit'), "pe_mode='vit' is not supported"),
    (dict(pe_mode='mpvg', last_ln_pe=4), r'must be an int k in \[0, 3\]'),
    (dict(pe_mode='mpvg', layerwise_pe=False, last_ln_pe=1),
     r'in \[0, 0\]'),
    (dict(pe_mode='gap', pe_first_block=True), 'only applies to the layer'),
    (dict(pe_mode='cls', hierarchical_pe=False), 'only applies to the layer'),
    (dict(pe_mode='gap', out_type='cls_token'), 'needs a class token'),
    (dict(pe_mode='gap', out_type='pooled'), 'not supported'),
    (dict(pe_mode='mpvg', final_norm=False), 'needs final_norm=True'),
    (dict(arch='deit-huge'), 'not a preset'),
    (dict(arch=dict(embed_dims=32, num_layers=2)), 'missing'),
    (dict(arch=dict(SMALL, depth=3)), 'unknown keys'),
    (dict(out_indices=(0, 4)), 'out of range'),
    (dict(frozen_stages=5), 'frozen_stages=5'),
    (dict(arch=dict(SMALL, num_heads=5)), 'divisible'),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs.setdefault('arch', SMALL)
    with pytest.raises(ValueError, match=match):
        MPVGViT(**kwargs)


def test_registered_in_every_scope():
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG
    for registry in (CLS, DET, SEG):
        m = registry.build(dict(type='MPVGViT', arch=SMALL, img_size=32,
                                patch_size=8, pe_mode='pvg'))
        assert isinstance(m, MPVGViT)


def test_pretrained_init_cfg_from_a_training_checkpoint(tmp_path):
    """init_cfg Pretrained with prefix='backbone.' loads a classifier's
    training checkpoint (message hub included, weights_only loading) into a
    backbone of another grid, resizing pos_0 on the way."""
    from mmengine.logging import MessageHub
    src = build('mpvg', img_size=32)  # 4x4 tokens
    hub = MessageHub.get_instance('pretrained-test')
    hub.update_scalar('train/loss', 1.0)
    state = {'backbone.' + k: v for k, v in src.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 32)
    path = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': state, 'message_hub': hub.state_dict()}, path)

    dst = MPVGViT(arch=SMALL, pe_mode='mpvg', img_size=(48, 64), patch_size=8,
                  out_type='featmap',
                  init_cfg=dict(type='Pretrained', checkpoint=path,
                                prefix='backbone.'))
    dst.init_weights()
    assert dst.pe.pos_embed.shape == (1, 48, 32)
    torch.testing.assert_close(dst.pe.last_norm.weight,
                               src.pe.last_norm.weight)
    torch.testing.assert_close(dst.blocks[2].attn.qkv.weight,
                               src.blocks[2].attn.qkv.weight)
    img = torch.randn(1, 3, 48, 64)
    src.out_type = 'featmap'
    with torch.no_grad():
        torch.testing.assert_close(dst.eval()(img)[0], src(img)[0])


def test_class_token_modes_can_drop_it_for_dense_outputs():
    """ViT-Adapter/mmseg use DeiT and LaPE backbones without class token:
    the PE rows are per-token, so the chain on the patch rows equals the
    patch rows of the chain with the class-token row."""
    lape = build('lape', out_type='raw')
    dense = MPVGViT(arch=SMALL, pe_mode='lape', with_cls_token=False,
                    out_type='featmap', img_size=32, patch_size=8)
    state = {k: v for k, v in lape.state_dict().items() if k != 'cls_token'}
    dense.load_state_dict(state)  # class-token PE row dropped on load
    assert dense.cls_token is None
    ref, got = lape.pe((4, 4)), dense.pe((4, 4))
    for l in range(SMALL['num_layers']):
        torch.testing.assert_close(got.layers[l], ref.layers[l][:, 1:])
    assert dense(torch.randn(1, 3, 32, 32))[0].shape == (1, 32, 4, 4)
    with pytest.raises(ValueError, match='only for dense outputs'):
        MPVGViT(arch=SMALL, pe_mode='cls', with_cls_token=False,
                out_type='avg_featmap')


# ---------------------------------------------------------------------- #
# the feature API: stem, blocks and tail exist once
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('mode', ['cls', 'lape', 'mpvg'])
def test_stem_blocks_tail_compose_to_forward(mode):
    m = build(mode, out_type='raw', out_indices=(1, 3))
    img = torch.randn(2, 3, 40, 24)  # 5x3 tokens
    with torch.no_grad():
        x, grid = m.forward_stem(img)
        assert grid.hw == (5, 3) and grid.num_extra_tokens == int(
            mode != 'mpvg')
        x1 = m.forward_blocks(x, grid, 0, 2)
        x3 = m.forward_tail(m.forward_blocks(x1, grid, 2), grid)
        feats, _ = m.forward_features(img, indices=(-1, 1))
        outs = m(img)
    torch.testing.assert_close(outs[0], x1)
    torch.testing.assert_close(outs[1], x3)
    torch.testing.assert_close(feats[0], x1)
    torch.testing.assert_close(feats[1], x3)
    # the tail is the Last LN plus, for MPVG, LN'_last(pos_0) per token
    expected = ln(m.norm, m.forward_blocks(x, grid))
    if mode == 'mpvg':
        expected = expected + ln(m.pe.last_norm, m.pe.resize((5, 3)))
    torch.testing.assert_close(x3, expected)


def test_adapter_is_not_a_plain_backbone():
    """The ViT-Adapter has a ViT; it is not accepted where an MPVGViT is."""
    from mmpvg.analysis import analyze_pe
    from mmpvg.models import MPVGViTAdapter, fold_last_ln_pe
    adapter = MPVGViTAdapter(arch=SMALL, img_size=32, patch_size=8,
                             window_size=0, conv_inplane=8,
                             deform_num_heads=2,
                             interaction_indexes=[[0, 1], [2, 3]],
                             vit_feature_source='final')
    assert not isinstance(adapter, MPVGViT)
    assert isinstance(adapter.vit, MPVGViT)
    with pytest.raises(TypeError, match='ViT-Adapter runs its ViT between'):
        analyze_pe(adapter, torch.randn(1, 3, 32, 32))

    class Classifier(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.backbone = adapter
            self.head = torch.nn.Module()
            self.head.fc = torch.nn.Linear(32, 3)

    with pytest.raises(TypeError, match='needs a classifier with an mmpvg'):
        fold_last_ln_pe(Classifier())
    # it accepts no argument it would ignore
    for name in ('out_type', 'out_indices', 'with_cls_token'):
        with pytest.raises(TypeError, match=name):
            MPVGViTAdapter(arch=SMALL, **{name: None})


def test_zero_sizes_are_errors_not_defaults():
    with pytest.raises(ValueError, match='img_size must be a positive int'):
        MPVGViT(arch=SMALL, img_size=0, patch_size=8)
    with pytest.raises(ValueError,
                       match='patch_size must be a positive int'):
        MPVGViT(arch=SMALL, img_size=32, patch_size=0)


def test_mmpretrain_arch_presets():
    """mmpretrain's preset names give its settings (and its defaults: qkv
    bias, 224 / 16, LN eps 1e-6); its 's' is not DeiT-S and is refused."""
    from mmpretrain.models import VisionTransformer
    for name in ('b', 'base', 'l', 'large', 'h', 'huge', 'deit-t',
                 'deit-tiny', 'deit-s', 'deit-small', 'deit-b', 'deit-base'):
        theirs = VisionTransformer.arch_zoo[name]
        ours = {**MPVGViT.ARCH_DEFAULTS, **MPVGViT.arch_zoo[name]}
        assert {k: ours[k] for k in theirs} == theirs, name
        assert (ours['qkv_bias'], ours['img_size'], ours['patch_size'],
                ours['norm_eps'], ours['norm_after_attn']) == (
                    True, 224, 16, 1e-6, False), name
    m = MPVGViT(arch='B', pe_mode='cls', img_size=32)
    assert (m.embed_dims, m.num_layers) == (768, 12)
    for name in ('s', 'small'):
        with pytest.raises(ValueError, match=f"arch='{name}' is ambiguous: "
                           "mmpretrain's ViT \"small\" has 768 dims"):
            MPVGViT(arch=name)

