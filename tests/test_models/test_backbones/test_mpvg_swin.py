"""MPVGSwin against the equations of the Swin-Ti section of
/work/shared/design/backbones.md.

Every structure is recomputed with plain tensor code from the model's
weights: the patch embedding, the patch merging (2x2 unfold, LN, linear),
the FFN, the PE chain through the merges, the Last-LN term and GAP. The
window attention operator is mmpretrain's own (``ShiftWindowMSA`` with its
explicit-softmax ``WindowMSA``), not the model's SDPA version. All
parameters are randomised so that no LayerNorm is the identity.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from mmpvg.models import MPVGSwin

# 3 stages: 16x16, 8x8, 4x4 tokens at 64x64 with patch 4; window 4, so the
# shifted windows of stages 0 and 1 are exercised (stage 2 is one window).
ARCH = dict(embed_dims=16, depths=[2, 2, 2], num_heads=[2, 2, 4])
KW = dict(arch=ARCH, img_size=64, patch_size=4, window_size=4,
          out_indices=(2, ), drop_path_rate=0.)
MODES = ['gap', 'lape', 'pvg', 'mpvg']


def randomise(model, seed=0, std=0.3):
    """Random parameters; 1-D weights (LayerNorm scales) around 1, the
    others with ``std`` (0.3 for the small test models; a deep model needs
    a smaller one to stay away from saturated softmaxes, where float32
    rounding of two correct implementations differs by more than 1e-5)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            offset = 1.0 if p.ndim == 1 and name.endswith('weight') else 0.
            scale = 0.3 if p.ndim == 1 else std
            p.copy_(torch.randn(p.shape, generator=g) * scale + offset)
    return model.eval()


def build(pe_mode='mpvg', seed=0, **kwargs):
    torch.manual_seed(seed)
    return randomise(MPVGSwin(pe_mode=pe_mode, **{**KW, **kwargs}), seed)


# ---------------------------------------------------------------------- #
# the spec, written out
# ---------------------------------------------------------------------- #
def ln(norm, x):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def patch_embed(pe, img):
    x = F.conv2d(img, pe.projection.weight, pe.projection.bias, stride=4)
    hw = x.shape[-2:]
    return ln(pe.norm, x.flatten(2).transpose(1, 2)), tuple(hw)


def merge(pm, x, hw):
    """2x2 neighbourhoods concatenated (unfold order), LN, linear."""
    B, N, C = x.shape
    h, w = hw
    cols = F.unfold(x.transpose(1, 2).reshape(B, C, h, w), 2, stride=2)
    x = ln(pm.norm, cols.transpose(1, 2))
    x = F.linear(x, pm.reduction.weight, pm.reduction.bias)
    return x, (h // 2, w // 2)


def softmax_window_attention(shift_msa, x, hw):
    """mmpretrain's shifted-window MSA with its explicit-softmax WindowMSA
    (the relative position bias included)."""
    from mmpretrain.models.utils.attention import WindowMSA
    ref = copy.deepcopy(shift_msa)
    ref.w_msa.__class__ = WindowMSA
    return ref(x, hw)


def ffn(f, x):
    fc1, fc2 = f.layers[0][0], f.layers[1]
    return F.linear(F.gelu(F.linear(x, fc1.weight, fc1.bias)), fc2.weight,
                    fc2.bias)


def block(blk, x, hw, pe=None):
    """x' = x + SW-MSA(LN_1(x) + pe); x'' = x' + FFN(LN_2(x'))."""
    a = ln(blk.norm1, x)
    x = x + softmax_window_attention(blk.attn, a if pe is None else a + pe,
                                     hw)
    return x + ffn(blk.ffn, ln(blk.norm2, x))


def reference(m, img, at_input, layerwise, first_block=True,
              hierarchical=True, last_k=None, gap=True):
    """The whole forward of one structure, by hand."""
    x, hw = patch_embed(m.patch_embed, img)
    pos_0 = m.pe.pos_embed
    if at_input:
        x = x + pos_0
    pos, base = pos_0, pos_0  # base: pos_0 merged to the current stage
    chain = [(pos_0, 0, hw)]  # pos_k, its stage and grid
    b = 0  # block index over all stages
    for s, stage in enumerate(m.stages):
        if s:
            prev = m.stages[s - 1].downsample
            x, new_hw = merge(prev, x, hw)
            pos, _ = merge(prev, pos, hw)
            base, _ = merge(prev, base, hw)
            hw = new_hw
        for blk in stage.blocks:
            pe = None
            if layerwise and (first_block or b > 0):
                pos = ln(m.pe.norms[str(b)], pos if hierarchical else base)
                chain.append((pos, s, hw))
                pe = pos
            x = block(blk, x, hw, pe)
            b += 1
    y = ln(getattr(m, f'norm{len(m.stages) - 1}'), x)
    if last_k is not None:
        p, s, g = chain[last_k]
        for t in range(s, len(m.stages) - 1):
            p, g = merge(m.stages[t].downsample, p, g)
        y = y + ln(m.pe.last_norm, p)
    return y.mean(1) if gap else y


EQUATIONS = dict(
    gap=dict(at_input=True, layerwise=False),
    lape=dict(at_input=False, layerwise=True),
    pvg=dict(at_input=True, layerwise=True),
    mpvg=dict(at_input=True, layerwise=True, last_k=0),
)


@pytest.mark.parametrize('mode', MODES)
def test_every_mode_matches_its_equations(mode):
    m = build(mode)
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, = m(img)
        assert out.shape == (2, 64, 4, 4)
        ref = reference(m, img, **EQUATIONS[mode])
    torch.testing.assert_close(out.mean((2, 3)), ref, rtol=1e-4, atol=1e-4)


def test_pe_layernorms_per_mode_and_widths():
    blocks = list(range(6))
    widths = [16, 16, 32, 32, 64, 64]
    for mode, last in [('gap', False), ('lape', False), ('pvg', False),
                       ('mpvg', True)]:
        m = build(mode)
        expected = [] if mode == 'gap' else blocks  # block 0 included
        assert sorted(int(k) for k in m.pe.norms) == expected, mode
        assert [m.pe.norms[str(b)].weight.numel()
                for b in expected] == widths[:len(expected)]
        assert (m.pe.last_norm is not None) == last
    assert build('mpvg').pe.last_norm.weight.numel() == 64
    assert build('mpvg').pe.last_norm.eps == 1e-5  # Swin's LayerNorm
    m = build('mpvg', pe_norm_cfg=dict(type='LN', eps=1e-6))
    assert m.pe.norms['0'].eps == m.pe.last_norm.eps == 1e-6
    assert m.norm2.eps == 1e-5
    assert build('mpvg').pe.pos_embed.shape == (1, 256, 16)
    # the merges are shared: the PE adds no merge parameters
    pvg, gap = MPVGSwin(pe_mode='pvg', **KW), MPVGSwin(pe_mode='gap', **KW)
    n = sum(p.numel() for p in pvg.parameters()) - sum(
        p.numel() for p in gap.parameters())
    assert n == 2 * sum(widths)


@pytest.mark.parametrize('switches,expected', [
    (dict(pe_first_block=False),
     dict(first_block=False, last_k=0)),
    (dict(hierarchical_pe=False),
     dict(hierarchical=False, last_k=0)),
    (dict(pe_at_input=False), dict(at_input=False, last_k=0)),
    (dict(last_ln_pe=3), dict(last_k=3)),
    (dict(last_ln_pe=6), dict(last_k=6)),
    (dict(last_ln_pe_source='last_stage_input'), dict(last_k=4)),
    (dict(last_ln_pe_source='pos_0'), dict(last_k=0)),
    (dict(layerwise_pe=False), dict(layerwise=False, last_k=0)),
    (dict(hierarchical_pe=False, last_ln_pe=5),
     dict(hierarchical=False, last_k=5)),
])
def test_ablation_switches_match_equations(switches, expected):
    m = build('mpvg', **switches)
    spec = dict(at_input=True, layerwise=True)
    spec.update(expected)
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(img)[0].mean((2, 3)),
                                   reference(m, img, **spec), rtol=1e-4,
                                   atol=1e-4)


def test_last_stage_input_is_the_pe_entering_the_last_stage():
    """k = the chain index of the last block of the stage before last:
    LN'_last(Merge(pe of block 3)), block 3 the last block of stage 1."""
    m = build('mpvg', last_ln_pe_source='last_stage_input')
    assert m.pe.last_ln_pe == 4
    pe = m.pe((16, 16), m.pe_transitions())
    merged, _ = merge(m.stages[1].downsample, pe.layers[3], (8, 8))
    torch.testing.assert_close(pe.last, ln(m.pe.last_norm, merged))
    tiny = MPVGSwin(arch='tiny', pe_mode='mpvg',
                    last_ln_pe_source='last_stage_input')
    assert tiny.pe.last_ln_pe == 10  # the PE of block 9 (pos_10), merged


def test_mpvg_map_is_pvg_map_plus_last_term_per_token():
    """The GAP neck pools the map with the Last-LN term in it."""
    pvg, mpvg = build('pvg', seed=1), build('mpvg', seed=2)
    missing, unexpected = mpvg.load_state_dict(pvg.state_dict(), strict=False)
    assert missing == ['pe.last_norm.weight', 'pe.last_norm.bias']
    assert unexpected == []
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        term = mpvg.pe((16, 16), mpvg.pe_transitions()).last  # (1, 16, 64)
        diff = mpvg(img)[0] - pvg(img)[0]
        torch.testing.assert_close(
            diff, term.reshape(1, 4, 4, 64).permute(0, 3, 1, 2).expand(
                2, -1, -1, -1), rtol=1e-5, atol=1e-5)


def test_attention_uses_sdpa(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', counting)
    m = build('mpvg')
    with torch.no_grad():
        m(torch.randn(1, 3, 64, 64))
    assert len(calls) == 6


# ---------------------------------------------------------------------- #
# mmpretrain checkpoints, other grids
# ---------------------------------------------------------------------- #
def mmpretrain_swin(**kwargs):
    from mmpretrain.models import SwinTransformer
    return SwinTransformer(**kwargs)


@pytest.mark.parametrize('arch,img_size,extra,std', [
    (ARCH, 64, dict(window_size=4, patch_size=4, out_indices=(0, 1, 2)),
     0.3),
    ('tiny', 224, dict(), 0.05),
])
def test_mmpretrain_checkpoint_gives_mmpretrain_outputs_in_gap(
        arch, img_size, extra, std):
    torch.manual_seed(0)
    src = mmpretrain_swin(arch=arch, img_size=img_size,
                          use_abs_pos_embed=True, drop_path_rate=0.,
                          **extra)
    randomise(src, seed=3, std=std)
    dst = MPVGSwin(arch=arch, pe_mode='gap', img_size=img_size,
                   drop_path_rate=0., **extra).eval()
    missing, unexpected = dst.load_state_dict(src.state_dict(), strict=True)
    assert not missing and not unexpected
    torch.testing.assert_close(dst.pe.pos_embed, src.absolute_pos_embed)
    img = torch.randn(1, 3, img_size, img_size)
    with torch.no_grad():
        for a, b in zip(dst(img), src(img)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_checkpoint_without_absolute_pe_reports_pos_0_missing():
    src = mmpretrain_swin(arch=ARCH, img_size=64, window_size=4,
                          out_indices=(2, ))
    dst = MPVGSwin(pe_mode='gap', **KW)
    missing, unexpected = dst.load_state_dict(src.state_dict(), strict=False)
    assert missing == ['pe.pos_embed'] and unexpected == []
    with pytest.raises(RuntimeError, match='pe.pos_embed'):
        dst.load_state_dict(src.state_dict())


def test_old_mmpretrain_keys_are_updated():
    """mmpretrain's own renames of version < 3 checkpoints apply too."""
    src = build('gap')
    state = src.state_dict()
    state['norm.weight'] = state.pop('norm2.weight')
    state['norm.bias'] = state.pop('norm2.bias')
    state._metadata = {'': dict(version=1)}
    dst = MPVGSwin(pe_mode='gap', **KW)
    dst.load_state_dict(state)
    torch.testing.assert_close(dst.norm2.weight, src.norm2.weight)


@pytest.mark.parametrize('mode', ['gap', 'lape', 'mpvg'])
def test_resize_on_load_equals_runtime_interpolation(mode):
    """A model stored for 16x16 tokens run on 24x24 equals a model built for
    24x24 that loaded the 16x16 checkpoint (pos_0 resized on load), also
    from mmpretrain's absolute_pos_embed key."""
    small = build(mode)
    big = MPVGSwin(pe_mode=mode, **{**KW, 'img_size': 96}).eval()
    big.load_state_dict(small.state_dict())
    assert big.pe.pos_embed.shape == (1, 576, 16)
    ref = F.interpolate(
        small.pe.pos_embed.reshape(1, 16, 16, 16).permute(0, 3, 1, 2),
        size=(24, 24), mode='bicubic', align_corners=False)
    torch.testing.assert_close(big.pe.pos_embed,
                               ref.flatten(2).transpose(1, 2))
    img = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(small(img)[0], big(img)[0])
    state = small.state_dict()
    state['absolute_pos_embed'] = state.pop('pe.pos_embed')
    other = MPVGSwin(pe_mode=mode, **{**KW, 'img_size': 96})
    other.load_state_dict(state)
    torch.testing.assert_close(other.pe.pos_embed, big.pe.pos_embed)


def test_dense_outputs_and_odd_sizes():
    m = build('mpvg', out_indices=(0, 1, 2))
    outs = m(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in outs] == [(2, 16, 16, 16), (2, 32, 8, 8),
                                       (2, 64, 4, 4)]
    m = build('mpvg', out_indices=(0, 1, 2), out_after_downsample=True)
    outs = m(torch.randn(1, 3, 64, 64))
    assert [o.shape for o in outs] == [(1, 32, 8, 8), (1, 64, 4, 4),
                                       (1, 64, 4, 4)]
    m = build('pvg', out_indices=(0, 1, 2), pad_small_map=True)
    outs = m(torch.randn(1, 3, 72, 40))  # 18x10 -> 9x5 -> 5x3 tokens
    assert [o.shape[-2:] for o in outs] == [(18, 10), (9, 5), (5, 3)]
    _, grid = m.forward_stem(torch.randn(1, 3, 72, 40))
    assert grid.stage_hw == ((18, 10), (9, 5), (5, 3))


def test_stem_blocks_tail_compose_to_forward():
    m = build('mpvg')
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        x, grid = m.forward_stem(img)
        x = m.forward_blocks(x, grid, 0, 3)  # stops inside stage 1
        x = m.forward_blocks(x, grid, 3)
        y = m.forward_tail(x, grid)
        out, = m(img)
    torch.testing.assert_close(
        y.reshape(2, 4, 4, 64).permute(0, 3, 1, 2), out)
    assert len(m.attention_norms()) == m.num_layers == 6
    assert m.last_ln is m.norm2


# ---------------------------------------------------------------------- #
# errors, freezing, lr decay, registry
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('kwargs,match', [
    (dict(pe_mode='cls'), 'Swin: it has no class token'),
    (dict(pe_mode='deit'), "pe_mode='deit' is not supported"),
    (dict(pe_mode='mpvg', last_ln_pe=7), r'must be an int k in \[0, 6\]'),
    (dict(pe_mode='pvg', last_ln_pe_source='pos_0'), 'does not have'),
    (dict(pe_mode='mpvg', last_ln_pe=2, last_ln_pe_source='pos_0'),
     'not both'),
    (dict(pe_mode='mpvg', last_ln_pe_source='stage3'), 'not supported'),
    (dict(pe_mode='gap', last_ln_pe=True,
          last_ln_pe_source='last_stage_input'),
     'needs a layer-wise PE'),
    (dict(pe_mode='mpvg', out_indices=(0, 1)), 'exists only when the last'),
    (dict(pe_mode='mpvg', norm_cfg=None), 'exists only when the last'),
    (dict(pe_mode='gap', pe_at_input=False), 'never use pos_0'),
    (dict(pe_mode='gap', pe_first_block=True), 'only applies to the layer'),
    (dict(pe_mode='mpvg', out_indices=(3, )), r'stage indices in \[0, 2\]'),
    (dict(pe_mode='mpvg', frozen_stages=3), 'frozen_stages=3'),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MPVGSwin(**{**KW, **kwargs})


def test_no_class_token_argument():
    with pytest.raises(TypeError, match='with_cls_token'):
        MPVGSwin(with_cls_token=True, **KW)


def test_frozen_stages():
    m = build('mpvg', frozen_stages=0)
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert {'pe.pos_embed', 'patch_embed.projection.weight',
            'stages.0.blocks.1.attn.w_msa.qkv.weight',
            'stages.0.downsample.reduction.weight', 'pe.norms.0.weight',
            'pe.norms.1.bias'} <= frozen
    assert 'pe.norms.2.weight' not in frozen
    assert 'stages.1.blocks.0.norm1.weight' not in frozen
    assert 'pe.last_norm.weight' not in frozen
    assert m.train() is m
    assert not m.stages[0].training and not m.pe.norms['1'].training
    assert m.stages[1].training and m.pe.norms['2'].training


@pytest.mark.parametrize('frozen_stages', [-1, 0, 2])
def test_frozen_stages_as_mmpretrain(frozen_stages):
    """Stages count from 0 as in mmpretrain's SwinTransformer (whose
    parameter names ours keep): the same parameters freeze, besides the
    PE (ours freezes pos_0 with the stem)."""
    from mmpretrain.models import SwinTransformer
    cfg = dict(KW, frozen_stages=frozen_stages)
    del cfg['drop_path_rate']
    theirs = SwinTransformer(**cfg)
    theirs.train()  # (it freezes in train() only; ours in __init__ too)
    expected = {n for n, p in theirs.named_parameters()
                if not p.requires_grad}
    ours = build('gap', frozen_stages=frozen_stages)
    frozen = {n for n, p in ours.named_parameters() if not p.requires_grad}
    assert {n for n in frozen if not n.startswith('pe.')} == expected
    assert ('pe.pos_embed' in frozen) == (frozen_stages >= 0)


def test_get_layer_depth():
    m = build('mpvg')
    depth = {n: m.get_layer_depth('backbone.' + n, 'backbone.')[0]
             for n, _ in m.named_parameters()}
    assert depth['pe.pos_embed'] == depth['patch_embed.norm.weight'] == 0
    assert depth['stages.0.blocks.0.norm1.weight'] == 1
    assert depth['pe.norms.0.weight'] == 1
    # block 3 (stage 1, block 1) and its PE LayerNorm
    assert depth['stages.1.blocks.1.attn.w_msa.qkv.weight'] == 4
    assert depth['pe.norms.3.bias'] == 4
    # a PatchMerging goes with the last block of its stage (mmpretrain)
    assert depth['stages.0.downsample.reduction.weight'] == 2
    assert depth['norm2.weight'] == depth['pe.last_norm.weight'] == 7
    assert m.get_layer_depth('head.fc.weight', 'backbone.') == (7, 8)


def test_registered_in_every_scope():
    import importlib
    for scope in ('mmpretrain', 'mmdet', 'mmseg'):
        registry = importlib.import_module(f'{scope}.registry').MODELS
        m = registry.build(dict(type='MPVGSwin', pe_mode='pvg', **KW))
        assert isinstance(m, MPVGSwin)


def test_analysis_reports_stages():
    from mmpvg.analysis import analyze_pe
    for mode in ('lape', 'pvg', 'mpvg'):
        m = build(mode)
        a = analyze_pe(m, torch.randn(3, 3, 64, 64), batch_size=2)
        assert a.stage_of_block == [0, 0, 1, 1, 2, 2]
        assert a.stage_hw == [(16, 16), (8, 8), (4, 4)]
        assert a.stage_dims == [16, 32, 64]
        assert [tuple(a.token_map(i).shape) for i in range(6)] == [
            (256, 16), (256, 16), (64, 32), (64, 32), (16, 64), (16, 64)]
        assert all(c is not None for c in a.correlations)
        d = a.to_dict()
        assert [s['grid'] for s in d['stages']] == [[16, 16], [8, 8], [4, 4]]
        assert d['layers'][4]['stage'] == 2
        assert (a.cosine_ln_pe is not None) == (mode == 'mpvg')
        assert a.norm_map_before_ln.shape == (4, 4)


def test_layer_decay_constructor_uses_the_swin_depths():
    from mmengine.optim import build_optim_wrapper

    import mmpvg  # noqa: F401
    model = torch.nn.Module()
    model.backbone = MPVGSwin(pe_mode='mpvg', **KW)
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.5)))
    lr_of = {id(p): g['lr'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    pe = model.backbone.pe
    assert lr_of[id(pe.pos_embed)] == 1e-3 * 0.5**7  # depth 0 of 8
    assert lr_of[id(pe.norms['3'].weight)] == 1e-3 * 0.5**3  # depth 4
    assert lr_of[id(pe.last_norm.weight)] == 1e-3


def test_inference_cache_and_checkpointing_keep_the_outputs():
    m = build('mpvg')
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = m(img)[0]
        m.pe.enable_inference_cache()
        torch.testing.assert_close(m(img)[0], ref)
        assert len(m.pe._cache) == 1
        torch.testing.assert_close(m(img)[0], ref)
    # gradient checkpointing of the blocks: same loss and gradients
    torch.manual_seed(0)
    a = build('pvg', seed=5).train()
    b = build('pvg', seed=5, with_cp=True).train()
    b.load_state_dict(a.state_dict())
    for m in (a, b):
        m(img)[0].square().mean().backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_fold_last_ln_pe_gives_the_same_logits():
    """After GAP of the last stage, MPVG's Last-LN term is a constant: the
    deploy fold moves it into the head bias (at the default grid and at
    another input size)."""
    import torch.nn as nn

    from mmpvg.models import fold_last_ln_pe
    for size in (None, (64, 96)):
        model = nn.Module()
        model.backbone = build('mpvg')
        model.head = nn.Module()
        model.head.fc = nn.Linear(64, 3)
        img = torch.randn(2, 3, *(size or (64, 64)))

        def logits():
            return model.head.fc(model.backbone(img)[-1].mean((2, 3)))

        with torch.no_grad():
            before = logits()
            grid = fold_last_ln_pe(model, img_size=size)
            assert grid == ((16, 16) if size is None else (16, 24))
            assert not model.backbone.pe.has_last_term
            torch.testing.assert_close(logits(), before, rtol=1e-5,
                                       atol=1e-5)
