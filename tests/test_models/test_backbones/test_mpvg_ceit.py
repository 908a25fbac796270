"""MPVGCeiT against the equations of the CeiT-Ti section of the design note.

Every structure is recomputed from the equations with plain tensor code and
the model's own weights (convolutions and BatchNorm through F.conv2d /
F.batch_norm with the running statistics, attention as an explicit softmax),
with every parameter and BN statistic randomised so that no norm is the
identity.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from mmpvg.models import MPVGCeiT

# 16x16 images: conv s2 -> 8x8, max-pool s2 -> 4x4, patch 1 -> 4x4 tokens
SMALL = dict(embed_dims=16, num_layers=3, num_heads=2,
             feedforward_channels=24, stem_channels=8, patch_size=1,
             lca_feedforward_channels=20)
MODES = ('cls', 'gap', 'lape', 'pvg', 'mpvg')


def build(pe_mode='mpvg', seed=0, **kwargs):
    kwargs.setdefault('arch', SMALL)
    kwargs.setdefault('img_size', 16)
    model = MPVGCeiT(pe_mode=pe_mode, **kwargs)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.ndim == 1 else 0.))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


# ---------------------------------------------------------------------- #
# the spec, written out
# ---------------------------------------------------------------------- #
def ln(norm, x):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def bn(norm, x):
    return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight,
                        norm.bias, training=False, eps=norm.eps)


def softmax_attention(qkv_w, qkv_b, proj, x, num_heads, last_query=False):
    B, N, C = x.shape
    q, k, v = F.linear(x, qkv_w, qkv_b).split(C, -1)
    q, k, v = (t.reshape(B, N, num_heads, C // num_heads).transpose(1, 2)
               for t in (q, k, v))
    if last_query:
        q = q[:, :, -1:]
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // num_heads), -1)
    out = (w @ v).transpose(1, 2).reshape(B, q.shape[2], C)
    return F.linear(out, proj.weight, proj.bias)


def stem(m, img):
    """conv 7x7 s2 p3 (no bias) -> BN -> max-pool 3x3 s2 p1 -> patch conv."""
    s = m.stem
    x = bn(s.norm, F.conv2d(img, s.conv.weight, None, stride=2, padding=3))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    pe = s.patch_embed.proj
    x = F.conv2d(x, pe.weight, pe.bias, stride=pe.stride)
    return x.flatten(2).transpose(1, 2), tuple(x.shape[-2:])


def leff(f, x, hw):
    """1x1 + BN + GELU, depthwise 3x3 + BN + GELU, 1x1 + BN on the patch
    grid; the class token row is 0 ('bypass') or the input ('concat')."""
    B, N, C = x.shape
    extra = N - hw[0] * hw[1]
    p = x[:, extra:].transpose(1, 2).reshape(B, C, *hw)
    p = F.gelu(bn(f.norm1, F.conv2d(p, f.conv1.weight, f.conv1.bias)))
    p = F.gelu(bn(f.norm2, F.conv2d(p, f.dwconv.weight, f.dwconv.bias,
                                    padding=1, groups=p.shape[1])))
    p = bn(f.norm3, F.conv2d(p, f.conv2.weight, f.conv2.bias))
    p = p.flatten(2).transpose(1, 2)
    head = x[:, :extra] if f.extra_tokens == 'concat' else 0 * x[:, :extra]
    return torch.cat([head, p], 1)


def block(blk, x, hw, pe=None):
    """x' = x + MSA(LN_l(x) + pe); x_{l+1} = x' + LeFF(LN''_l(x'))."""
    a = ln(blk.norm1, x)
    x = x + softmax_attention(blk.attn.qkv.weight, blk.attn.qkv.bias,
                              blk.attn.proj, a if pe is None else a + pe,
                              blk.attn.num_heads)
    return x + leff(blk.mlp, ln(blk.norm2, x), hw)


def lca(m, tokens):
    """t = T + E; z = t_L + MSA(query LN(t)_L; keys LN(t)); z + MLP(LN(z))."""
    c = m.lca
    t = tokens + (c.layer_embed if c.layer_embed is not None else 0)
    z = t[:, -1:] + softmax_attention(c.qkv.weight, c.qkv.bias, c.proj,
                                      ln(c.norm1, t), c.num_heads,
                                      last_query=True)
    hid = F.gelu(F.linear(ln(c.norm2, z), c.mlp.fc1.weight, c.mlp.fc1.bias))
    return z + F.linear(hid, c.mlp.fc2.weight, c.mlp.fc2.bias)


def reference(m, img, cls_token, at_input, layerwise, first_block=False,
              hierarchical=True, last_k=None, pooling='after_ln'):
    """The whole network from the equations, every switch explicit."""
    p, hw = stem(m, img)
    x = p
    if cls_token:
        x = torch.cat([m.cls_token.expand(len(p), -1, -1), p], 1)
    pos_0 = m.pe.pos_embed
    if at_input:
        x = x + pos_0
    pos, chain, tokens = pos_0, [pos_0], []
    for i, blk in enumerate(m.blocks):
        pe = None
        if layerwise and (first_block or i > 0):
            pos = ln(m.pe.norms[str(i)], pos if hierarchical else pos_0)
            chain.append(pos)
            pe = pos
        x = block(blk, x, hw, pe)
        # the LCA reads each block's class token, or the mean of its tokens
        tokens.append(x[:, 0] if cls_token else x.mean(1))
    y = ln(m.norm, lca(m, torch.stack(tokens, 1)))
    if last_k is not None:
        if pooling == 'after_ln':  # mean over tokens of LN'_last(pos_k)
            y = y + ln(m.pe.last_norm, chain[last_k]).mean(1, keepdim=True)
        else:  # LN'_last of the mean over tokens of pos_k
            y = y + ln(m.pe.last_norm, chain[last_k].mean(1, keepdim=True))
    return y[:, 0]


MODE_SWITCHES = dict(
    cls=dict(cls_token=True, at_input=True, layerwise=False),
    gap=dict(cls_token=False, at_input=True, layerwise=False),
    lape=dict(cls_token=True, at_input=False, layerwise=True,
              first_block=True),
    pvg=dict(cls_token=False, at_input=True, layerwise=True),
    mpvg=dict(cls_token=False, at_input=True, layerwise=True, last_k=0),
)


@pytest.mark.parametrize('mode', MODES)
def test_every_mode_matches_its_equations(mode):
    m = build(mode)
    img = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out, = m(img)
        ref = reference(m, img, **MODE_SWITCHES[mode])
    assert out.shape == (2, 16)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_structure_of_each_mode():
    L = SMALL['num_layers']
    seen = {}
    for mode in MODES:
        m = build(mode)
        seen[mode] = (sorted(int(k) for k in m.pe.norms),
                      m.pe.last_norm is not None, m.cls_token is not None,
                      m.pe.pos_embed.shape[1], m.lca_tokens, m.out_type)
    assert seen['cls'] == ([], False, True, 17, 'cls', 'cls_token')
    assert seen['gap'] == ([], False, False, 16, 'gap', 'avg_featmap')
    assert seen['lape'] == (list(range(L)), False, True, 17, 'cls',
                            'cls_token')
    assert seen['pvg'] == (list(range(1, L)), False, False, 16, 'gap',
                           'avg_featmap')
    assert seen['mpvg'] == (list(range(1, L)), True, False, 16, 'gap',
                            'avg_featmap')


@pytest.mark.parametrize('mode,switches,expected', [
    ('mpvg', dict(pe_first_block=True), dict(first_block=True, last_k=0)),
    ('mpvg', dict(hierarchical_pe=False), dict(hierarchical=False, last_k=0)),
    ('mpvg', dict(pe_at_input=False), dict(at_input=False, last_k=0)),
    ('mpvg', dict(last_ln_pe=2), dict(last_k=2)),
    ('mpvg', dict(last_ln_pe_pooling='before_ln'),
     dict(last_k=0, pooling='before_ln')),
    ('mpvg', dict(last_ln_pe=1, last_ln_pe_pooling='before_ln'),
     dict(last_k=1, pooling='before_ln')),
    ('mpvg', dict(layerwise_pe=False), dict(layerwise=False, last_k=0)),
    ('gap', dict(last_ln_pe=0), dict(layerwise=False, last_k=0)),
    ('lape', dict(hierarchical_pe=False),
     dict(cls_token=True, at_input=False, first_block=True,
          hierarchical=False)),
])
def test_ablation_switches_match_equations(mode, switches, expected):
    m = build(mode, **switches)
    sw = dict(cls_token=False, at_input=True, layerwise=True)
    sw.update(expected)
    img = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(m(img)[0], reference(m, img, **sw),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('mode', ['cls', 'mpvg'])
def test_cetit_readings_leff_concat_and_no_layer_embed(mode):
    m = build(mode, leff_extra_tokens='concat', lca_layer_embed=False,
              leff_conv_bias=False)
    assert m.lca.layer_embed is None and m.blocks[0].mlp.conv1.bias is None
    img = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            m(img)[0], reference(m, img, **MODE_SWITCHES[mode]),
            rtol=1e-4, atol=1e-4)
    if mode == 'cls':  # 'concat' differs from 'bypass' on the class token
        b = build(mode, lca_layer_embed=False, leff_conv_bias=False)
        with torch.no_grad():
            assert not torch.allclose(m(img)[0], b(img)[0], atol=1e-3)


def test_mpvg_is_pvg_plus_a_constant_after_the_last_ln():
    pvg, mpvg = build('pvg', seed=1), build('mpvg', seed=2)
    missing, unexpected = mpvg.load_state_dict(pvg.state_dict(), strict=False)
    assert missing == ['pe.last_norm.weight', 'pe.last_norm.bias']
    assert unexpected == []
    img = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        term = ln(mpvg.pe.last_norm, mpvg.pe.pos_embed).mean(1)
        torch.testing.assert_close(mpvg(img)[0], pvg(img)[0] + term,
                                   rtol=1e-5, atol=1e-5)


def test_lca_layer_embed_starts_at_zero_and_deit_init():
    m = MPVGCeiT(arch=SMALL, img_size=16, pe_mode='lape')
    assert torch.count_nonzero(m.lca.layer_embed) == 0
    for norm in [m.norm, m.pe.norms['0'], m.blocks[0].norm1, m.lca.norm1]:
        assert norm.eps == 1e-6
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
    assert m.stem.conv.bias is None  # conv 7x7 without bias, then BN
    assert m.blocks[0].attn.qkv.bias is not None


# ---------------------------------------------------------------------- #
# parameter counts
# ---------------------------------------------------------------------- #
def test_parameter_counts_of_ceit_tiny_per_mode():
    counts = {mode: sum(p.numel() for p in MPVGCeiT(
        pe_mode=mode).parameters()) for mode in MODES}
    # backbone only (no head); + 193,000 for a 1000-class linear head
    assert counts == dict(cls=6163904, gap=6163520, lape=6168512,
                          pvg=6167744, mpvg=6168128)
    C, L = 192, 12
    assert counts['cls'] - counts['gap'] == 2 * C  # class token + PE row
    assert counts['lape'] - counts['cls'] == L * 2 * C  # L PE LayerNorms
    assert counts['pvg'] - counts['gap'] == (L - 1) * 2 * C
    assert counts['mpvg'] - counts['pvg'] == 2 * C  # LN'_last
    m = MPVGCeiT(pe_mode='cls')
    assert m.patch_resolution == (14, 14)
    assert m.pe.pos_embed.shape == (1, 197, 192)
    assert len(m.blocks) == 12 and m.blocks[0].attn.num_heads == 3
    assert m.blocks[0].mlp.conv1.out_channels == 768
    assert m.stem.conv.out_channels == 64


# ---------------------------------------------------------------------- #
# outputs, grids, checkpoints
# ---------------------------------------------------------------------- #
def test_featmap_outputs_are_the_blocks_patch_tokens():
    m = build('lape', out_type='featmap', out_indices=(0, -1))
    img = torch.randn(2, 3, 12, 20)  # stride 4, patch 1: 3x5 tokens
    with torch.no_grad():
        outs = m(img)
        x, grid = m.forward_stem(img)
        x0 = m.forward_blocks(x, grid, 0, 1)
        x2 = m.forward_blocks(x0, grid, 1)
    assert [o.shape for o in outs] == [(2, 16, 3, 5)] * 2
    torch.testing.assert_close(outs[0], x0[:, 1:].reshape(2, 3, 5, 16)
                               .permute(0, 3, 1, 2))
    torch.testing.assert_close(outs[1], x2[:, 1:].reshape(2, 3, 5, 16)
                               .permute(0, 3, 1, 2))
    # a class-token mode may drop it for dense use (the LCA then takes GAP)
    dense = build('cls', with_cls_token=False, out_type='featmap')
    assert dense.cls_token is None and dense.lca_tokens == 'gap'
    assert dense(img)[0].shape == (2, 16, 3, 5)


@pytest.mark.parametrize('size', [(16, 16), (17, 30), (33, 9), (224, 224)])
def test_any_input_size_gives_the_grid_the_model_computes(size):
    m = build('mpvg', out_type='featmap')
    with torch.no_grad():
        out, = m(torch.randn(1, 3, *size))
    assert tuple(out.shape[-2:]) == m.token_grid(size)
    assert MPVGCeiT(pe_mode='cls').token_grid(224) == (14, 14)


def test_stem_blocks_tail_compose_to_forward_and_tail_needs_all_blocks():
    m = build('mpvg')
    img = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        x, grid = m.forward_stem(img)
        with pytest.raises(RuntimeError, match=r'blocks \[1, 2\]'):
            m.forward_tail(m.forward_blocks(x, grid, 0, 1), grid)
        x = m.forward_blocks(m.forward_blocks(x, grid, 0, 1), grid, 1)
        y = m.forward_tail(x, grid)
        assert y.shape == (2, 1, 16)
        torch.testing.assert_close(y[:, 0], m(img)[0])
    assert grid.stage_hw == ((4, 4), ) and sorted(grid.layer_tokens) == [
        0, 1, 2]


@pytest.mark.parametrize('mode', ['cls', 'lape', 'mpvg'])
def test_runtime_interpolation_equals_loading_at_the_new_grid(mode):
    """A model stored for 4x4 tokens run on 6x8 equals a model built for 6x8
    that loaded the 4x4 checkpoint (pos_0 resized by the load hook)."""
    small = build(mode)
    big = MPVGCeiT(arch=SMALL, pe_mode=mode, img_size=(24, 32)).eval()
    big.load_state_dict(small.state_dict())
    extra = int(mode != 'mpvg')
    assert big.pe.pos_embed.shape == (1, 48 + extra, 16)
    img = torch.randn(2, 3, 24, 32)
    with torch.no_grad():
        torch.testing.assert_close(small(img)[0], big(img)[0])
        ref = F.interpolate(
            small.pe.pos_embed[:, extra:].reshape(1, 4, 4, 16).permute(
                0, 3, 1, 2), size=(6, 8), mode='bicubic', align_corners=False)
        torch.testing.assert_close(big.pe.pos_embed[:, extra:],
                                   ref.flatten(2).transpose(1, 2))


def test_pretrained_init_cfg_loads_a_classifier_of_another_grid(tmp_path):
    src = build('pvg')
    state = {'backbone.' + k: v for k, v in src.state_dict().items()}
    path = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': state}, path)
    dst = MPVGCeiT(arch=SMALL, pe_mode='pvg', img_size=32,
                   init_cfg=dict(type='Pretrained', checkpoint=path,
                                 prefix='backbone.'))
    dst.init_weights()
    assert dst.pe.pos_embed.shape == (1, 64, 16)
    torch.testing.assert_close(dst.lca.qkv.weight, src.lca.qkv.weight)
    img = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst.eval()(img)[0], src(img)[0])


def test_get_layer_depth():
    m = build('mpvg')
    L = SMALL['num_layers']
    depth = {n: m.get_layer_depth('backbone.' + n, 'backbone.')[0]
             for n, _ in m.named_parameters()}
    assert depth['pe.pos_embed'] == depth['stem.conv.weight'] == 0
    assert depth['stem.norm.weight'] == 0
    assert depth['stem.patch_embed.proj.bias'] == 0
    assert depth['blocks.0.norm1.weight'] == 1
    assert depth['pe.norms.2.weight'] == depth['blocks.2.mlp.conv2.bias'] == 3
    assert depth['blocks.1.mlp.dwconv.weight'] == depth['pe.norms.1.bias'] == 2
    last = L + 1
    assert depth['norm.weight'] == depth['pe.last_norm.bias'] == last
    assert depth['lca.qkv.weight'] == depth['lca.layer_embed'] == last
    assert m.get_layer_depth('head.fc.weight', 'backbone.') == (last, L + 2)
    lape = build('lape')
    assert lape.get_layer_depth('cls_token')[0] == 0
    assert lape.get_layer_depth('pe.norms.0.weight')[0] == 1


def test_frozen_stages_keep_bn_in_eval():
    # mmpretrain's meaning: 0 freezes nothing (not even the stem)
    assert all(p.requires_grad
               for p in build('mpvg', frozen_stages=0).parameters())
    m = build('mpvg', frozen_stages=2).train()
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert {'pe.pos_embed', 'stem.conv.weight', 'blocks.1.mlp.conv1.weight',
            'pe.norms.1.weight'} <= frozen
    assert 'blocks.2.attn.qkv.weight' not in frozen
    assert 'lca.qkv.weight' not in frozen
    assert not m.stem.norm.training and not m.blocks[1].mlp.norm1.training
    assert m.blocks[2].mlp.norm1.training


def test_attention_uses_sdpa(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', counting)
    m = build('mpvg')
    with torch.no_grad():
        m(torch.randn(1, 3, 16, 16))
    assert len(calls) == SMALL['num_layers'] + 1  # the blocks and the LCA


@pytest.mark.parametrize('kwargs,match', [
    (dict(pe_mode='mpvg', with_cls_token=True), 'incompatible with a class'),
    (dict(pe_mode='cls', with_cls_token=False), 'only for dense outputs'),
    (dict(pe_mode='lape', last_ln_pe=0), 'last_ln_pe needs GAP'),
    (dict(pe_mode='mpvg', last_ln_pe=3), r'must be an int k in \[0, 2\]'),
    (dict(pe_mode='gap', hierarchical_pe=False), 'only applies to the layer'),
    (dict(pe_mode='mpvg', final_norm=False), 'needs final_norm=True'),
    (dict(pe_mode='pvg', lca_tokens='cls'), "lca_tokens='cls' needs a class"),
    (dict(pe_mode='cls', lca_tokens='gap'), 'class token unused'),
    (dict(pe_mode='cls', lca_tokens='mean'), 'not supported'),
    (dict(pe_mode='mpvg', out_type='cls_token'),
     "use 'avg_featmap' or 'featmap'"),
    (dict(pe_mode='lape', out_type='avg_featmap'),
     "use 'cls_token' or 'featmap'"),
    (dict(pe_mode='mpvg', out_type='raw'), 'not supported'),
    (dict(pe_mode='mpvg', last_ln_pe_pooling='max'), 'not supported'),
    (dict(leff_extra_tokens='drop'), 'not supported'),
    (dict(leff_kernel_size=2), 'positive odd'),
    (dict(arch='base'), 'not a preset'),
    (dict(arch=dict(embed_dims=16, num_layers=2)), 'missing'),
    (dict(arch=dict(SMALL, depth=3)), 'unknown keys'),
    (dict(out_indices=(0, 3)), 'out of range'),
    (dict(frozen_stages=4), 'frozen_stages=4'),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs.setdefault('arch', SMALL)
    with pytest.raises(ValueError, match=match):
        MPVGCeiT(img_size=16, **kwargs)


def test_registered_and_light():
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG
    for registry in (CLS, SEG):
        m = registry.build(dict(type='MPVGCeiT', arch=SMALL, img_size=16,
                                pe_mode='pvg'))
        assert isinstance(m, MPVGCeiT)


# ---------------------------------------------------------------------- #
# the PE analysis (only the PEBackbone contract)
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('mode', ['lape', 'pvg'])
def test_pe_analysis_per_layer_maps_and_correlations(mode):
    """The per-layer part of the analysis (the paper's Fig. 2/4) on CeiT.
    (final_norm=False: no Last LN.)"""
    from mmpvg.analysis import analyze_pe, layer_pe_map
    m = build(mode, final_norm=False)
    result = analyze_pe(m, torch.randn(5, 3, 16, 16), batch_size=2)
    assert result.token_maps.shape == (3, 16, 16)
    first = 0 if mode == 'lape' else 1
    assert result.correlations[first] is not None
    assert (result.correlations[0] is None) == (mode == 'pvg')
    assert result.norm_map_before_ln.shape == (4, 4)
    torch.testing.assert_close(result.pe_map(2),
                               layer_pe_map(m, 2).double())


@pytest.mark.parametrize('mode', ['lape', 'pvg', 'mpvg'])
def test_pe_analysis_with_the_last_ln(mode):
    """CeiT's Last LN normalises the one pooled LCA token: the analysis
    reports what applies (bias variance, the norm map before it) and says
    why the per-token parts are absent."""
    from mmpvg.analysis import analyze_pe
    m = build(mode)
    result = analyze_pe(m, torch.randn(2, 3, 16, 16))
    assert result.norm_map_before_ln.shape == (4, 4)
    assert result.norm_map_after_ln is None and result.cosine_ln is None
    assert result.norm_map_after_ln_pe is None
    assert 'normalises a pooled token' in result.notes['last_ln']
    assert result.last_ln_bias_variance == pytest.approx(
        float(m.norm.bias.double().var(unbiased=False)))


def test_layer_decay_constructor_uses_get_layer_depth():
    """mmpvg's LayerDecayOptimWrapperConstructor on a classifier with
    MPVGCeiT: the lr of each parameter follows get_layer_depth."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGCeiT', arch=SMALL, img_size=16,
                      pe_mode='mpvg'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=16)))
    groups = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        constructor='LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.5))).optimizer.param_groups
    lr = {g['param_name']: g['lr'] for g in groups}
    L = SMALL['num_layers']
    assert lr['backbone.stem.conv.weight'] == 0.5**(L + 1)
    assert lr['backbone.pe.norms.2.weight'] == lr[
        'backbone.blocks.2.mlp.conv1.weight'] == 0.5**(L - 2)
    assert lr['backbone.lca.qkv.weight'] == lr['head.fc.weight'] == 1.0


def test_fold_last_ln_pe_gives_the_same_logits():
    """MPVG's pooled Last-LN term is a constant after the LCA: the deploy
    fold moves it into the head bias, for both pooling readings."""
    import torch.nn as nn

    from mmpvg.models import fold_last_ln_pe
    for pooling in ('after_ln', 'before_ln'):
        model = nn.Module()
        model.backbone = build('mpvg', last_ln_pe_pooling=pooling)
        model.head = nn.Module()
        model.head.fc = nn.Linear(SMALL['embed_dims'], 5)
        img = torch.randn(2, 3, 16, 16)

        def logits():
            return model.head.fc(model.backbone(img)[0])

        with torch.no_grad():
            before = logits()
            fold_last_ln_pe(model)
            assert not model.backbone.pe.has_last_term
            torch.testing.assert_close(logits(), before, rtol=1e-5,
                                       atol=1e-5)
