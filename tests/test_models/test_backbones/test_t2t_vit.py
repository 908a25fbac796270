"""MPVGViT with arch 't2t-vit-7' (T2T-ViT-7) against the equations.

Each mode is recomputed from the design note's equations with plain tensor
code and the model's own weights (explicit softmax attention), all trainable
parameters randomised so that no LayerNorm is the identity. pos_0 is T2T-ViT's
fixed 1-D sinusoidal table, re-built here from its formula: class-token
models use its rows 0..N, GAP models rows 1..N. The Performer stem has its
own equation test (tests/test_models/test_layers/test_t2t_module.py); here
its output is the patch tokens p.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmpvg.models import MPVGViT

# T2T stem with the official soft splits, a small encoder, 64x64 -> 4x4.
SMALL = dict(embed_dims=32, num_layers=4, num_heads=4, feedforward_channels=48,
             qkv_bias=False, stem='t2t', pos_embed_type='sinusoidal',
             norm_eps=1e-5, t2t_cfg=dict(token_dims=8))
MODES = ('cls', 'gap', 'lape', 'pvg', 'mpvg')


def build(pe_mode='mpvg', seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs.setdefault('arch', SMALL)
    kwargs.setdefault('img_size', 64)
    model = MPVGViT(pe_mode=pe_mode, **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # pos_0 and the random features stay fixed
                p.copy_(torch.randn_like(p) * 0.3 +
                        (1.0 if p.ndim == 1 else 0.))
    return model.eval()


def sinusoid(rows, dims):
    """T2T-ViT's table: angle p / 10000^(2 (j // 2) / d), sin on even j,
    cos on odd j."""
    table = np.array([[p / np.power(10000, 2 * (j // 2) / dims)
                       for j in range(dims)] for p in range(rows)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.tensor(table, dtype=torch.float32)[None]


def pos_0(m, hw=(4, 4)):
    """The class-token table of N + 1 rows; GAP models take rows 1..N."""
    table = sinusoid(hw[0] * hw[1] + 1, m.embed_dims)
    return table if m.with_cls_token else table[:, 1:]


def ln(norm, x):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def attention(attn, x):
    B, N, C = x.shape
    h = attn.num_heads
    assert attn.qkv.bias is None  # T2T-ViT: no qkv bias
    q, k, v = (x @ attn.qkv.weight.T).split(C, -1)
    q, k, v = (t.reshape(B, N, h, C // h).transpose(1, 2) for t in (q, k, v))
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // h), dim=-1)
    out = (w @ v).transpose(1, 2).reshape(B, N, C)
    return out @ attn.proj.weight.T + attn.proj.bias


def block(blk, x, pe=None):
    """x' = x + MSA(LN_l(x) + pe); x_{l+1} = x' + MLP(LN''_l(x'))."""
    a = ln(blk.norm1, x)
    x = x + attention(blk.attn, a if pe is None else a + pe)
    h = F.gelu(F.linear(ln(blk.norm2, x), blk.mlp.fc1.weight,
                        blk.mlp.fc1.bias))
    return x + F.linear(h, blk.mlp.fc2.weight, blk.mlp.fc2.bias)


def tokens(m, img):
    return m.patch_embed(img)[0]


def ref_cls(m, img, pe_at_input=True, layerwise=False):
    """Default: x_0 = [cls; p] + pos_0; head on LN_last(x_L)[cls].
    LaPE: x_0 = [cls; p]; pos_{l+1} = LN'_l(pos_l) at block l."""
    p = tokens(m, img)
    x = torch.cat([m.cls_token.expand(len(p), -1, -1), p], 1)
    pos = pos_0(m)
    if pe_at_input:
        x = x + pos
    for i, blk in enumerate(m.blocks):
        pe = None
        if layerwise:
            pos = pe = ln(m.pe.norms[str(i)], pos)
        x = block(blk, x, pe)
    return ln(m.norm, x)[:, 0]


def ref_gap(m, img, layerwise=False, last_term=False):
    """GAP: x_0 = p + pos_0. PVG: + pos_l = LN'_l(pos_{l-1}) at blocks
    1..L-1. MPVG: + LN'_last(pos_0) per token after the Last LN."""
    pos = base = pos_0(m)
    x = tokens(m, img) + base
    for i, blk in enumerate(m.blocks):
        pe = None
        if layerwise and i > 0:
            pos = pe = ln(m.pe.norms[str(i)], pos)
        x = block(blk, x, pe)
    y = ln(m.norm, x)
    if last_term:
        y = y + ln(m.pe.last_norm, base)
    return y.mean(1)


REFERENCES = dict(
    cls=ref_cls,
    gap=ref_gap,
    lape=lambda m, img: ref_cls(m, img, pe_at_input=False, layerwise=True),
    pvg=lambda m, img: ref_gap(m, img, layerwise=True),
    mpvg=lambda m, img: ref_gap(m, img, layerwise=True, last_term=True))


@pytest.mark.parametrize('mode', MODES)
def test_every_mode_matches_its_equations(mode):
    m = build(mode)
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, = m(img)
        ref = REFERENCES[mode](m, img)
    assert out.shape == (2, 32)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_pe_layernorms_per_mode():
    L = SMALL['num_layers']
    found = {mode: (sorted(int(k) for k in build(mode).pe.norms),
                    build(mode).pe.last_norm is not None) for mode in MODES}
    assert found == dict(cls=([], False), gap=([], False),
                         lape=(list(range(L)), False),
                         pvg=(list(range(1, L)), False),
                         mpvg=(list(range(1, L)), True))


def test_t2t_vit_7_structure():
    m = MPVGViT(arch='t2t-vit-7', pe_mode='cls')
    assert len(m.blocks) == 7 and m.embed_dims == 256
    assert m.blocks[0].attn.num_heads == 4
    assert m.blocks[0].mlp.fc1.out_features == 512
    assert m.blocks[0].attn.qkv.bias is None
    assert m.patch_resolution == (14, 14) and m.patch_size == (16, 16)
    norms = [mod for mod in m.modules() if isinstance(mod, torch.nn.LayerNorm)]
    assert norms and all(n.eps == 1e-5 for n in norms)  # stem included
    # pos_0: the fixed 197-row table of the official code, not trained
    assert not m.pe.pos_embed.requires_grad
    torch.testing.assert_close(m.pe.pos_embed, sinusoid(197, 256))
    gap = MPVGViT(arch='t2t-vit-7', pe_mode='mpvg')
    torch.testing.assert_close(gap.pe.pos_embed, sinusoid(197, 256)[:, 1:])
    rows0 = MPVGViT(arch='t2t-vit-7', pe_mode='gap',
                    sinusoid_skip_cls_row=False)
    torch.testing.assert_close(rows0.pe.pos_embed, sinusoid(196, 256))


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_of_t2t_vit_7():
    """Every parameter, the fixed ones included (pos_0 and the Performer
    random features), with a 1000-class linear head: Default 4.31M, as the
    paper's 4.3M."""
    head = 256 * 1000 + 1000
    counts = {mode: count(MPVGViT(arch='t2t-vit-7', pe_mode=mode)) + head
              for mode in MODES}
    assert counts == dict(cls=4310222, gap=4309710, lape=4313806,
                          pvg=4312782, mpvg=4313294)
    m = MPVGViT(arch='t2t-vit-7', pe_mode='cls')
    fixed = sum(p.numel() for p in m.parameters() if not p.requires_grad)
    assert fixed == 197 * 256 + 2 * 32 * 64  # sinusoid + random features
    assert counts['lape'] - counts['cls'] == 7 * 2 * 256  # 7 PE LNs
    assert counts['pvg'] - counts['gap'] == 6 * 2 * 256  # 6 PE LNs
    assert counts['mpvg'] - counts['pvg'] == 2 * 256  # LN'_last
    assert counts['cls'] - counts['gap'] == 256 + 256  # class token + row


def test_mpvg_is_pvg_with_a_constant_logit_shift():
    """pos_0 is fixed: GAP of LN'_last(pos_0) is a constant vector."""
    pvg, mpvg = build('pvg', seed=1), build('mpvg', seed=2)
    mpvg.load_state_dict(pvg.state_dict(), strict=False)
    img = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        term = ln(mpvg.pe.last_norm, pos_0(mpvg)).mean(1)
        torch.testing.assert_close(mpvg(img)[0], pvg(img)[0] + term,
                                   rtol=1e-5, atol=1e-5)


def test_fold_last_ln_pe_on_a_t2t_classifier():
    from mmpretrain.registry import MODELS

    from mmpvg.models import fold_last_ln_pe
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=SMALL, img_size=64,
                      pe_mode='mpvg'),
        head=dict(type='LinearClsHead', num_classes=5, in_channels=32))
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.3)
    img = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        before = model(img, mode='tensor')
        assert fold_last_ln_pe(model) == (4, 4)
        assert not model.backbone.pe.has_last_term
        after = model(img, mode='tensor')
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    # the folded weights are a PVG-structured checkpoint
    cfg['backbone']['last_ln_pe'] = False
    folded = MODELS.build(cfg).eval()
    folded.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(folded(img, mode='tensor'), before,
                                   rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- #
# grids and checkpoints
# ---------------------------------------------------------------------- #
def test_any_input_size_rebuilds_the_table_for_its_grid():
    m = build('mpvg', out_type='featmap')
    # 100 -> 25 -> 13 -> 7 columns (the unfold arithmetic, not 100 / 16)
    img = torch.randn(1, 3, 64, 100)
    assert m.token_grid((64, 100)) == (4, 7)
    with torch.no_grad():
        assert m(img)[0].shape == (1, 32, 4, 7)
        pe = m.pe((4, 7))
    torch.testing.assert_close(pe.input, sinusoid(29, 32)[:, 1:])


@pytest.mark.parametrize('mode', ['cls', 'lape', 'mpvg'])
def test_checkpoint_of_another_grid_loads_with_the_table_rebuilt(mode):
    small = build(mode)  # 4x4 tokens
    big = MPVGViT(arch=SMALL, pe_mode=mode, img_size=96).eval()  # 6x6
    big.load_state_dict(small.state_dict())
    extra = int(mode != 'mpvg')
    assert big.pe.pos_embed.shape == (1, 36 + extra, 32)
    torch.testing.assert_close(big.pe.pos_embed,
                               sinusoid(37, 32)[:, 1 - extra:])
    img = torch.randn(2, 3, 96, 96)
    with torch.no_grad():  # same as the small model run on the big grid
        torch.testing.assert_close(small(img)[0], big(img)[0])


def test_class_token_checkpoint_into_gap_model_shares_the_patch_pe():
    cls_model = build('cls')
    gap = MPVGViT(arch=SMALL, pe_mode='gap', img_size=64)
    state = {k: v for k, v in cls_model.state_dict().items()
             if k != 'cls_token'}
    gap.load_state_dict(state)
    torch.testing.assert_close(gap.pe.pos_embed, cls_model.pe.pos_embed[:, 1:])


def test_get_layer_depth():
    m = build('mpvg')
    L = SMALL['num_layers']
    depth = {n: m.get_layer_depth('backbone.' + n, 'backbone.')[0]
             for n, _ in m.named_parameters()}
    for name in ('pe.pos_embed', 'patch_embed.attention1.kqv.weight',
                 'patch_embed.attention2.w', 'patch_embed.project.bias'):
        assert depth[name] == 0, name
    assert depth['blocks.0.attn.qkv.weight'] == 1
    assert depth['pe.norms.2.weight'] == depth['blocks.2.mlp.fc2.bias'] == 3
    assert depth['norm.weight'] == depth['pe.last_norm.bias'] == L + 1
    assert m.get_layer_depth('head.fc.weight', 'backbone.') == (L + 1, L + 2)
    lape = build('lape')
    assert lape.get_layer_depth('backbone.cls_token', 'backbone.')[0] == 0
    assert lape.get_layer_depth('backbone.pe.norms.0.bias',
                                'backbone.')[0] == 1


def test_frozen_stages_freeze_the_t2t_stem():
    m = build('pvg', frozen_stages=1)
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert 'patch_embed.attention1.kqv.weight' in frozen
    assert 'patch_embed.project.weight' in frozen
    assert 'blocks.0.attn.qkv.weight' in frozen
    assert 'blocks.1.attn.qkv.weight' not in frozen
    assert 'pe.norms.1.weight' not in frozen
    m.train()
    assert not m.patch_embed.training and m.blocks[1].training


@pytest.mark.parametrize('mode', ['lape', 'pvg', 'mpvg'])
def test_pe_analysis_runs(mode):
    from mmpvg.analysis import analyze_pe
    m = build(mode)
    result = analyze_pe(m, torch.randn(3, 3, 64, 64), batch_size=2)
    L = SMALL['num_layers']
    assert result.token_maps.shape == (L, 16, 32)
    has_pe = [c is not None for c in result.correlations]
    assert has_pe == [mode == 'lape'] + [True] * (L - 1)
    assert all(-1 <= c <= 1 for c in result.correlations if c is not None)
    torch.testing.assert_close(result.pe_map(1).float(),
                               m.pe((4, 4)).layers[1][0, m.num_extra_tokens:])
    assert (result.norm_map_after_ln_pe is not None) == (mode == 'mpvg')


def test_demo_arch_grid():
    """The demo's stem (configs/_base_/models/t2t-vit-demo.py) gives an
    8x8 grid at 32x32."""
    m = MPVGViT(arch=dict(SMALL, t2t_cfg=dict(
        token_dims=8, kernel_sizes=(3, 3, 3), strides=(2, 2, 1),
        paddings=(1, 1, 1))), img_size=32)
    assert m.patch_resolution == (8, 8) and m.patch_size == (4, 4)


@pytest.mark.parametrize('kwargs,match', [
    (dict(patch_size=16), 'patch_size=16 does not apply to the T2T stem'),
    (dict(arch=dict(SMALL, patch_size=8)), 'does not apply to the T2T stem'),
    (dict(arch=dict(SMALL, stem='conv')), "stem='conv' is not supported"),
    (dict(arch=dict(SMALL, stem='patch')), "t2t_cfg needs stem='t2t'"),
    (dict(arch=dict(SMALL, pos_embed_type='fixed')),
     "pos_embed_type='fixed' is not supported"),
    (dict(arch=dict(SMALL, t2t_cfg=dict(size=3))), 'size'),
    (dict(arch=dict(SMALL, pos_embed_init_std=0.02)),
     'not to the fixed sinusoidal table'),
    (dict(pe_mode='cls', sinusoid_skip_cls_row=True),
     'only applies to a model without class token'),
    (dict(arch=dict(SMALL, pos_embed_type='learnable'),
          sinusoid_skip_cls_row=True), 'only applies to a sinusoidal'),
    (dict(pe_mode='mpvg', with_cls_token=True), 'incompatible with a class'),
    (dict(pe_mode='cls', last_ln_pe=0), 'last_ln_pe needs GAP'),
    (dict(pe_mode='gap', hierarchical_pe=False), 'only applies to the layer'),
    (dict(pe_mode='pvg', last_ln_pe=4), r'must be an int k in \[0, 3\]'),
    (dict(img_size=2), 'too small'),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs.setdefault('arch', SMALL)
    kwargs.setdefault('img_size', 64)
    with pytest.raises((ValueError, TypeError), match=match):
        MPVGViT(**kwargs)
