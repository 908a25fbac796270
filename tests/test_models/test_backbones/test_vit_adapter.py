"""MPVGViTAdapter: the ViT-Adapter around MPVGViT (tiny configs, CPU)."""
import logging
import math

import pytest
import torch
import torch.nn.functional as F

from mmpvg.models import MPVGViT, MPVGViTAdapter
from mmpvg.models.layers.deform_geometry import reference_points

TINY = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
# Two interactions keep the tests small; ViT-Adapter's per-interaction wiring
# needs four, so these tiny models add the final map to every level.
ADAPTER = dict(conv_inplane=8, deform_num_heads=2,
               interaction_indexes=[[0, 1], [2, 3]],
               vit_feature_source='final')
MODES = ['cls', 'gap', 'lape', 'pvg', 'mpvg']


def build(pe_mode='mpvg', seed=0, randomise_vit=True, **kwargs):
    """A tiny adapter (pos_0 stored for 2x2 tokens); the ViT's parameters
    randomised so that no LayerNorm is the identity, gamma left at 0."""
    for k, v in dict(arch=TINY, img_size=32, window_size=0,
                     global_attn_indexes=(), **ADAPTER).items():
        kwargs.setdefault(k, v)
    torch.manual_seed(seed)
    model = MPVGViTAdapter(pe_mode=pe_mode, **kwargs)
    if randomise_vit:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if not name.startswith(model.ADAPTER_PREFIXES):
                    p.copy_(torch.randn_like(p) * 0.5 +
                            (1.0 if p.ndim == 1 else 0.))
    return model.eval()


def vit_of(adapter, **kwargs):
    """The plain MPVGViT with the adapter's ViT weights."""
    vit = MPVGViT(arch=TINY, pe_mode=adapter.vit.pe_mode,
                  with_cls_token=False, out_type='featmap', img_size=32,
                  **kwargs).eval()
    vit.load_state_dict(adapter.vit.state_dict())  # strict
    return vit


def adapter_keys(model):
    return {k for k in model.state_dict()
            if k.startswith(MPVGViTAdapter.ADAPTER_PREFIXES)}


# ---------------------------------------------------------------------- #
# shapes
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('size', [(97, 131), (64, 96), (32, 32)])
def test_output_shapes_and_strides(size):
    m = build(window_size=2, global_attn_indexes=(1, ))
    with torch.no_grad():
        outs = m(torch.randn(2, 3, *size))
    assert len(outs) == 4
    for out, stride in zip(outs, (4, 8, 16, 32)):
        assert out.shape == (2, 32, math.ceil(size[0] / stride),
                             math.ceil(size[1] / stride))


def test_train_mode_step_on_odd_input():
    m = build(window_size=2, global_attn_indexes=(3, )).train()
    outs = m(torch.randn(2, 3, 97, 131))
    assert [o.shape[-2:] for o in outs] == [(25, 33), (13, 17), (7, 9),
                                            (4, 5)]
    assert m.train() is m


# ---------------------------------------------------------------------- #
# the ViT inside the adapter
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('window', [0, 2])
def test_untrained_injector_leaves_the_vit_unchanged(mode, window):
    """gamma = 0: the ViT token map inside the adapter (after the final norm
    and, for MPVG, the Last-LN PE term) is MPVGViT's own featmap."""
    glob = (1, ) if window else ()
    m = build(mode, window_size=window, global_attn_indexes=glob)
    vit = vit_of(m, window_size=window, global_attn_indexes=glob)
    img = torch.randn(2, 3, 64, 96)  # 4x6 tokens, pos_0 resized from 2x2
    with torch.no_grad():
        vit_maps, adapter_maps = m.forward_features(img)
        expected, = vit(img)
    assert all(t is vit_maps[0] for t in vit_maps)  # one map for all levels
    torch.testing.assert_close(vit_maps[2], expected)
    # the adapter's own maps are at strides 4/8/16/32
    assert [a.shape[-2:] for a in adapter_maps] == [(16, 24), (8, 12),
                                                    (4, 6), (2, 3)]


@pytest.mark.parametrize('mode', MODES)
def test_every_mode_uses_its_pe(mode):
    m = build(mode)
    img = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ref = m(img)
        m.vit.pe.pos_embed.add_(torch.randn_like(m.vit.pe.pos_embed))
        new = m(img)
    for a, b in zip(ref, new):
        assert not torch.allclose(a, b, atol=1e-3)
    pe = m.vit.pe((4, 6))
    assert (pe.input is None) == (mode == 'lape')
    assert (pe.last is not None) == (mode == 'mpvg')
    assert m.vit.cls_token is None


@pytest.mark.parametrize('mode', ['lape', 'mpvg'])
def test_tokens_entering_the_first_injector(mode):
    """'lape' adds nothing at the input; the other modes add pos_0."""
    m = build(mode)
    seen = []
    m.interactions[0].injector.register_forward_pre_hook(
        lambda module, args: seen.append(args[0]))
    img = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        m(img)
        patches = m.vit.patch_embed.proj(img).flatten(2).transpose(1, 2)
        pos_0 = m.vit.pe.resize((4, 6))
    expected = patches if mode == 'lape' else patches + pos_0
    torch.testing.assert_close(seen[0], expected)


def test_injector_and_extractor_paths():
    m = build('mpvg')
    img = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        vit_maps, maps = m.forward_features(img)
        spm = m.spm(img)
        # the extractors changed c (c2..c4 are not the SPM's + level embed)
        for level in (1, 2, 3):
            assert not torch.allclose(maps[level], spm[level], atol=1e-3)
        # ... and c depends on the ViT through them
        m.vit.blocks[1].mlp.fc2.bias.add_(torch.randn(32))  # LN drops constants
        vit_maps2, maps2 = m.forward_features(img)
        assert not torch.allclose(maps[2], maps2[2], atol=1e-3)
        # with gamma = 0 the adapter does not change the ViT
        m.spm.projs[2].bias.add_(1.0)
        torch.testing.assert_close(m.forward_features(img)[0][2],
                                   vit_maps2[2])
        # gamma != 0: the injector feeds the SPM into the ViT
        for interaction in m.interactions:
            interaction.injector.gamma.fill_(1.0)
        assert not torch.allclose(m.forward_features(img)[0][2],
                                  vit_maps2[2], atol=1e-3)


def test_outputs_are_adapter_maps_plus_resized_vit_map_then_norm():
    m = build('mpvg')
    for norm in m.out_norms:  # non-trivial running statistics
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2.0)
    img = torch.randn(1, 3, 64, 96)  # multiples of 32: plain resizing
    with torch.no_grad():
        (vit, *_), maps = m.forward_features(img)
        outs = m(img)
    for level, (scale, out) in enumerate(zip((4, 2, 1, 0.5), outs)):
        expected = maps[level] + F.interpolate(
            vit, scale_factor=scale, mode='bilinear', align_corners=False)
        torch.testing.assert_close(out, m.out_norms[level](expected))


def test_exact_alignment_on_odd_sizes():
    m = build('mpvg')
    vit = torch.randn(1, 32, 7, 9)  # 97 x 131 image at stride 16
    up = m._resize_vit_map(vit, 8, (13, 17))
    torch.testing.assert_close(up, F.interpolate(
        vit, size=(14, 18), mode='bilinear', align_corners=False)[..., :13,
                                                                   :17])
    down = m._resize_vit_map(vit, 32, (4, 5))
    assert down.shape[-2:] == (4, 5)
    torch.testing.assert_close(down[..., :3, :4],
                               F.avg_pool2d(vit[..., :6, :8], 2))
    torch.testing.assert_close(down[..., 3, 4], vit[..., 6, 8])
    # reference points: cell centres in pixels over each level's extent
    ref = reference_points([(7, 9)], [(16, 16)], [(13, 17), (4, 5)],
                           [(8, 8), (32, 32)])
    assert ref.shape == (1, 63, 2, 2)
    torch.testing.assert_close(ref[0, 0, 0], torch.tensor([8 / 136, 8 / 104]))
    torch.testing.assert_close(ref[0, -1, 1],
                               torch.tensor([136 / 160, 104 / 128]))
    # multiples of 32: the usual (i + 0.5) / size
    ref = reference_points([(2, 2)], [(32, 32)], [(4, 4)], [(16, 16)])
    torch.testing.assert_close(
        ref[0, :, 0], torch.tensor([[.25, .25], [.75, .25], [.25, .75],
                                    [.75, .75]]))


def test_vit_features_from_each_interaction():
    m = build('mpvg', interaction_indexes=[[0, 0], [1, 1], [2, 2], [3, 3]],
              vit_feature_source='interactions')
    vit = vit_of(m, out_indices=(0, 1, 2))
    img = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        vit_maps, _ = m.forward_features(img)
        x0, x1, x2 = vit(img)[:3]
        vit.out_indices = [3]
        final, = vit(img)
    for got, expected in zip(vit_maps, (x0, x1, x2, final)):
        torch.testing.assert_close(got, expected)
    assert [o.shape[-1] for o in m(img)] == [24, 12, 6, 3]
    with pytest.raises(ValueError, match='needs 4 interactions'):
        build(vit_feature_source='interactions')


def test_structure_and_extra_extractors():
    m = MPVGViTAdapter(arch=TINY, img_size=32, window_size=0, **ADAPTER)
    assert len(m.interactions) == 2
    assert len(m.interactions[0].extra_extractors) == 0
    assert len(m.interactions[1].extra_extractors) == 2
    assert m.level_embed.shape == (3, 32)
    for interaction in m.interactions:
        assert torch.equal(interaction.injector.gamma, torch.zeros(32))
        assert interaction.injector.attn.num_levels == 3
        assert interaction.extractor.attn.num_levels == 1
        assert interaction.extractor.ffn.fc1.out_features == 8  # 0.25 x 32
    no_extra = MPVGViTAdapter(arch=TINY, img_size=32, window_size=0,
                              use_extra_extractor=False, **ADAPTER)
    assert len(no_extra.interactions[1].extra_extractors) == 0
    # every parameter is either the ViT's (MPVGViT's, under vit.) or the
    # adapter's
    vit = MPVGViT(arch=TINY, pe_mode='mpvg', out_type='featmap', img_size=32)
    names = set(m.state_dict())
    assert names - adapter_keys(m) == {'vit.' + k for k in vit.state_dict()}


def test_deit_tiny_defaults():
    m = MPVGViTAdapter()
    assert m.embed_dims == 192 and m.num_layers == 12
    assert m.interaction_indexes == [(0, 2), (3, 5), (6, 8), (9, 11)]
    assert [b.window_size for b in m.vit.blocks] == [14, 14, 0] * 4
    assert m.spm.stem[0].conv.out_channels == 64
    assert m.spm.conv4.conv.out_channels == 256
    inj = m.interactions[0].injector.attn
    assert (inj.num_heads, inj.num_points) == (6, 4)
    assert m.vit.blocks[-1].drop_path.drop_prob == pytest.approx(0.1)
    assert m.interactions[0].extractor.drop_path.drop_prob == pytest.approx(
        0.1)


# ---------------------------------------------------------------------- #
# gradients, lr decay, freezing
# ---------------------------------------------------------------------- #
def test_backward_reaches_pe_blocks_and_adapter():
    m = build('mpvg').train()
    outs = m(torch.randn(2, 3, 64, 96))
    sum((o ** 2).mean() for o in outs).backward()
    grads = {n: p.grad for n, p in m.named_parameters()}
    assert all(g is not None for g in grads.values())

    def nonzero(name):
        return grads[name].abs().sum() > 0

    for name in ['vit.pe.pos_embed', 'vit.pe.norms.1.weight',
                 'vit.pe.norms.3.bias', 'vit.pe.last_norm.weight',
                 'vit.patch_embed.proj.weight',
                 'vit.blocks.0.attn.qkv.weight', 'vit.blocks.3.mlp.fc2.weight',
                 'vit.norm.weight', 'spm.stem.0.conv.weight', 'spm.projs.3.weight',
                 'level_embed', 'interactions.0.injector.gamma',
                 'interactions.0.extractor.attn.value_proj.weight',
                 'interactions.0.extractor.attn.sampling_offsets.weight',
                 'interactions.1.extractor.ffn.dwconv.weight',
                 'interactions.1.extra_extractors.1.ffn.fc2.weight',
                 'up.weight', 'out_norms.0.weight']:
        assert nonzero(name), name
    # gamma = 0: the injector's attention gets no gradient until gamma moves
    assert not nonzero('interactions.0.injector.attn.value_proj.weight')


def test_get_layer_depth():
    m = build('mpvg')
    L = TINY['num_layers']
    depth = {n: m.get_layer_depth('backbone.' + n, 'backbone.')
             for n, _ in m.named_parameters()}
    assert depth['vit.pe.pos_embed'] == (0, L + 2)
    assert depth['vit.patch_embed.proj.weight'] == (0, L + 2)
    assert depth['vit.blocks.2.attn.qkv.weight'] == (3, L + 2)
    assert depth['vit.pe.norms.2.weight'] == (3, L + 2)
    assert depth['vit.norm.weight'] == (L + 1, L + 2)
    assert depth['vit.pe.last_norm.weight'] == (L + 1, L + 2)
    adapter = [n for n in depth if n.startswith(m.ADAPTER_PREFIXES)]
    assert adapter and all(depth[n] == (L + 1, L + 2) for n in adapter)


def test_frozen_stages_freeze_only_the_vit():
    # mmpretrain's meaning: 0 freezes nothing (not even the stem)
    assert all(p.requires_grad
               for p in build('mpvg', frozen_stages=0).parameters())
    m = build('mpvg', frozen_stages=2)
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert 'vit.pe.pos_embed' in frozen
    assert 'vit.blocks.1.norm1.weight' in frozen
    assert 'vit.blocks.2.norm1.weight' not in frozen
    assert not frozen & {n for n, _ in m.named_parameters()
                         if n.startswith(m.ADAPTER_PREFIXES)}
    assert m.train() is m
    assert not m.vit.blocks[1].training and m.vit.blocks[2].training
    assert m.spm.training and m.out_norms[0].training


# ---------------------------------------------------------------------- #
# checkpoints
# ---------------------------------------------------------------------- #
def save_classifier(path, src, extra=None):
    """A classification training checkpoint as mmengine writes it."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('adapter-test')
    hub.update_scalar('train/loss', 1.0)
    state = {'backbone.' + k: v for k, v in src.state_dict().items()}
    state['head.fc.weight'] = torch.randn(10, 32)
    state['head.fc.bias'] = torch.randn(10)
    torch.save({'meta': {'epoch': 3}, 'state_dict': state,
                'message_hub': hub.state_dict(), **(extra or {})}, path)


class Capture(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def missing_keys_logged(messages):
    """The keys of mmengine's 'missing keys in source state_dict' warning."""
    for msg in messages:
        if 'missing keys in source state_dict:' in msg:
            keys = msg.split('missing keys in source state_dict:')[1]
            return {k.strip() for k in keys.split(',') if k.strip()}
    return set()


@pytest.mark.parametrize('mode', ['mpvg', 'cls'])
def test_pretrained_classifier_checkpoint_loads_into_the_adapter(
        tmp_path, mode):
    from mmengine.logging import MMLogger
    from mmengine.runner.checkpoint import _load_checkpoint_with_prefix
    # mmpretrain's resize as the reference for ours
    from mmpretrain.models.utils import resize_pos_embed

    torch.manual_seed(1)
    src = MPVGViT(arch=TINY, pe_mode=mode, img_size=48)  # 3x3 tokens
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p))
    path = str(tmp_path / 'cls.pth')
    save_classifier(path, src)

    dst = MPVGViTAdapter(arch=TINY, pe_mode=mode, img_size=64,  # 4x4
                         window_size=0, **ADAPTER,
                         init_cfg=dict(type='Pretrained', checkpoint=path,
                                       prefix='backbone.'))
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    logger = MMLogger.get_current_instance()
    capture = Capture()
    logger.addHandler(capture)
    try:
        dst.init_weights()
    finally:
        logger.removeHandler(capture)
    after = dst.state_dict()

    # every ViT key loaded; pos_0 resized (class-token row dropped)
    src_state = src.state_dict()
    vit_keys = set(after) - adapter_keys(dst)
    expected_vit = {'vit.' + k for k in src_state} - {'vit.cls_token'}
    assert vit_keys == expected_vit
    for k in vit_keys - {'vit.pe.pos_embed'}:
        assert torch.equal(after[k], src_state[k[len('vit.'):]]), k
    torch.testing.assert_close(
        after['vit.pe.pos_embed'],
        resize_pos_embed(src_state['pe.pos_embed'][:, src.num_extra_tokens:],
                         (3, 3), (4, 4), mode='bicubic', num_extra_tokens=0))

    # the adapter keys, and only they, are missing and left at their init
    missing = missing_keys_logged(capture.messages)
    assert missing == {k for k in adapter_keys(dst)
                       if 'num_batches_tracked' not in k}
    for k in adapter_keys(dst):
        assert torch.equal(after[k], before[k]), k
    assert not any('unexpected key' in msg for msg in capture.messages)
    if mode == 'cls':
        assert any('cls_token: dropped' in msg for msg in capture.messages)
        assert any('dropping the class-token row' in msg
                   for msg in capture.messages)

    # the same through torch's load_state_dict result
    state = _load_checkpoint_with_prefix('backbone.', path)
    fresh = MPVGViTAdapter(arch=TINY, pe_mode=mode, img_size=64,
                           window_size=0, **ADAPTER)
    result = fresh.load_state_dict(state, strict=False)
    # (BN fills in a missing num_batches_tracked of an unversioned state)
    assert set(result.missing_keys) == missing
    assert result.unexpected_keys == []


# ---------------------------------------------------------------------- #
# OpenMMLab registries
# ---------------------------------------------------------------------- #
def test_built_by_mmdet_and_mmseg_with_their_necks_and_heads():
    import mmpvg  # noqa: F401
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    cfg = dict(type='MPVGViTAdapter', arch=TINY, img_size=32, pe_mode='mpvg',
               window_size=2, global_attn_indexes=[1, 3], **ADAPTER)
    img = torch.randn(1, 3, 64, 96)
    det = DET.build(cfg).eval()
    seg = SEG.build(cfg).eval()
    assert isinstance(det, MPVGViTAdapter) and isinstance(seg, MPVGViTAdapter)
    fpn = DET.build(dict(type='FPN', in_channels=[32] * 4, out_channels=16,
                         num_outs=5))
    head = SEG.build(dict(type='UPerHead', in_channels=[32] * 4,
                          in_index=[0, 1, 2, 3], pool_scales=(1, 2),
                          channels=16, num_classes=3,
                          norm_cfg=dict(type='BN'), align_corners=False))
    head.eval()
    with torch.no_grad():
        feats = fpn(det(img))
        assert [f.shape[-2:] for f in feats] == [(16, 24), (8, 12), (4, 6),
                                                 (2, 3), (1, 2)]
        assert head(seg(img)).shape == (1, 3, 16, 24)


@pytest.mark.parametrize('kwargs,match', [
    (dict(interaction_indexes=[[0, 1], [3, 3]]), 'consecutive blocks'),
    (dict(interaction_indexes=[[0, 1], [2, 2]]), 'every block must belong'),
    (dict(interaction_indexes=[[1, 3]]), 'consecutive blocks'),
    (dict(vit_feature_source='last'), 'not supported'),
    (dict(global_attn_indexes=(2, 5)), "out of range"),
    (dict(pe_mode='mpvg', final_norm=False), 'needs final_norm=True'),
])
def test_bad_arguments(kwargs, match):
    kwargs = dict(dict(arch=TINY, window_size=2, global_attn_indexes=(3, ),
                       **ADAPTER), **kwargs)
    with pytest.raises(ValueError, match=match):
        MPVGViTAdapter(**kwargs)
