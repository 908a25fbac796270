"""Checkpoint converters: timm/DeiT <-> MPVGViT 'cls', LaPE -> 'lape', and
classification -> detection/segmentation backbone.

Every conversion is checked by outputs, not only by key names: the source
model and the converted one run on the same images with random weights
(every LayerNorm randomised, so none is the identity) and must agree to
1e-5.
"""
import argparse
import functools
import hashlib
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import VisionTransformer

import mmpvg  # noqa: F401
from conftest import ROOT, TOOL_TIMEOUT
from mmpvg.models import MPVGViT
from mmpvg.converters import (convert_classifier_to_backbone,
                              convert_lape_to_mpvg, convert_mpvg_to_timm,
                              convert_timm_to_mpvg, format_backbone_cfg,
                              infer_vit_arch, load_checkpoint, save_checkpoint,
                              unwrap_state_dict)

EMBED, DEPTH, HEADS, FFN, IMG, PATCH, CLASSES = 32, 3, 4, 64, 32, 8, 10
ARCH = dict(embed_dims=EMBED, num_layers=DEPTH, num_heads=HEADS,
            feedforward_channels=FFN)
TOL = dict(atol=1e-5, rtol=1e-5)
CONVERTERS = osp.join(ROOT, 'tools', 'model_converters')


# ---------------------------------------------------------------------- #
# models
# ---------------------------------------------------------------------- #
def randomise(model, seed):
    """Random weights everywhere; LayerNorm weights around 1, not 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            is_norm_weight = p.ndim == 1 and name.endswith('weight')
            p.copy_(noise * 0.3 + (1.0 if is_norm_weight else 0.0))
    return model.eval()


def timm_kwargs(**kwargs):
    cfg = dict(img_size=IMG, patch_size=PATCH, embed_dim=EMBED, depth=DEPTH,
               num_heads=HEADS, mlp_ratio=FFN / EMBED, num_classes=CLASSES,
               class_token=True, global_pool='token', qkv_bias=True,
               norm_layer=functools.partial(nn.LayerNorm, eps=1e-6))
    cfg.update(kwargs)
    return cfg


def timm_vit(seed=0, cls=VisionTransformer, **kwargs):
    return randomise(cls(**timm_kwargs(**kwargs)), seed)


class LaPEReference(VisionTransformer):
    """LaPE as its official DeiT fork computes it, on timm's modules.

    Each block owns ``pe_norm``; no PE is added at the input;
    ``pos = blocks[i].pe_norm(pos)`` and block ``i`` attends over
    ``norm1(x) + pos``; the class token feeds the head.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for blk in self.blocks:
            blk.pe_norm = nn.LayerNorm(self.embed_dim, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        pos = self.pos_embed
        for blk in self.blocks:
            pos = blk.pe_norm(pos)
            x = x + blk.attn(blk.norm1(x) + pos)
            x = x + blk.mlp(blk.norm2(x))
        return self.head(self.norm(x)[:, 0])


def classifier(pe_mode='cls', seed=None, **backbone):
    backbone.setdefault('img_size', IMG)
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=ARCH, patch_size=PATCH,
                      pe_mode=pe_mode, **backbone),
        head=dict(type='LinearClsHead', num_classes=CLASSES,
                  in_channels=EMBED)))
    return randomise(model, seed) if seed is not None else model.eval()


@pytest.fixture(scope='module')
def images():
    return torch.randn(2, 3, IMG, IMG, generator=torch.Generator()
                       .manual_seed(123))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'_converter_{name}', osp.join(CONVERTERS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------------- #
# timm/DeiT <-> MPVGViT 'cls'
# ---------------------------------------------------------------------- #
def test_timm_to_mpvg_gives_timm_logits(images):
    src = timm_vit(seed=0)
    converted = convert_timm_to_mpvg(src.state_dict())
    model = classifier('cls')
    model.load_state_dict(converted, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'), src(images),
                                   **TOL)
    arch = infer_vit_arch(converted)
    assert arch == dict(
        embed_dims=EMBED, num_layers=DEPTH, feedforward_channels=FFN,
        qkv_bias=True, patch_size=PATCH, patch_resolution=(4, 4),
        img_size=IMG, in_channels=3, pe_mode='cls', layerwise_pe=False,
        pe_first_block=False, last_ln_pe=None, final_norm=True,
        num_classes=CLASSES)


def test_mpvg_to_timm_reverse_and_round_trip(images):
    # MPVGViT 'cls' -> timm: the timm model reproduces MPVGViT's logits.
    model = classifier('cls', seed=1)
    timm_sd = convert_mpvg_to_timm(model.state_dict())
    target = VisionTransformer(**timm_kwargs()).eval()
    target.load_state_dict(timm_sd, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(target(images), model(images,
                                                         mode='tensor'),
                                   **TOL)

    # timm -> MPVGViT -> timm gives back the very same state dict.
    src = timm_vit(seed=2)
    back = convert_mpvg_to_timm(convert_timm_to_mpvg(src.state_dict()))
    original = src.state_dict()
    assert list(back) == list(original)
    for key in original:
        assert torch.equal(back[key], original[key]), key


def test_headless_and_no_qkv_bias_timm(images):
    src = timm_vit(seed=3, num_classes=0, qkv_bias=False)
    converted = convert_timm_to_mpvg(src.state_dict())
    assert not any(k.startswith('head') for k in converted)
    backbone = MPVGViT(arch=ARCH, pe_mode='cls', img_size=IMG,
                       patch_size=PATCH, qkv_bias=False).eval()
    backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in converted.items()}, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[0], src(images), **TOL)
    assert convert_mpvg_to_timm(converted).keys() == src.state_dict().keys()


def test_arch_hint_names_deit_presets():
    """A DeiT-Ti-shaped checkpoint is announced as arch='deit-tiny'."""
    state = {'backbone.cls_token': torch.empty(1, 1, 192),
             'backbone.pe.pos_embed': torch.empty(1, 197, 192),
             'backbone.patch_embed.proj.weight': torch.empty(192, 3, 16, 16)}
    for name in ('weight', 'bias'):
        state[f'backbone.norm.{name}'] = torch.empty(192)
    for i in range(12):
        state[f'backbone.blocks.{i}.mlp.fc1.weight'] = torch.empty(768, 192)
        state[f'backbone.blocks.{i}.attn.qkv.bias'] = torch.empty(576)
    assert format_backbone_cfg(infer_vit_arch(state)).split('\n') == [
        "backbone=dict(type='MPVGViT', arch='deit-tiny', pe_mode='cls', "
        'img_size=224, patch_size=16)',
        '# Not stored in the weights (set them as trained if they differ):',
        "#   num_heads=3 (the deit-tiny preset's)",
        '#   norm_after_attn=False (the block layout: a ViT-Lite block, as '
        "in arch='vit-lite-7', has the same weights)",
        '#   pe_at_input=True (pos_0 added to the tokens before block 0)']


# ---------------------------------------------------------------------- #
# LaPE -> MPVGViT 'lape'
# ---------------------------------------------------------------------- #
def test_lape_to_mpvg_gives_lape_logits(images):
    src = randomise(LaPEReference(**timm_kwargs()), seed=4)
    assert 'blocks.2.pe_norm.weight' in src.state_dict()
    converted = convert_lape_to_mpvg(src.state_dict())
    assert torch.equal(converted['backbone.pe.norms.1.bias'],
                       src.blocks[1].pe_norm.bias)
    model = classifier('lape')
    model.load_state_dict(converted, strict=True)
    with torch.no_grad():
        out = model(images, mode='tensor')
        torch.testing.assert_close(out, src(images), **TOL)
        # The PE really matters here: a timm ViT (PE at the input, no
        # pe_norm) with the same shared weights computes something else.
        plain = VisionTransformer(**timm_kwargs()).eval()
        plain.load_state_dict({k: v for k, v in src.state_dict().items()
                               if 'pe_norm' not in k})
        assert (plain(images) - out).abs().max() > 1e-2
    assert infer_vit_arch(converted)['pe_mode'] == 'lape'


# ---------------------------------------------------------------------- #
# classification -> detection/segmentation backbone
# ---------------------------------------------------------------------- #
def test_classifier_to_backbone_resizes_pe_and_reports_unused(images):
    model = classifier('mpvg', seed=5)
    state = model.state_dict()
    converted, unused = convert_classifier_to_backbone(
        state, dst_prefix='', img_size=(48, 40))
    assert unused == ['head.fc.weight', 'head.fc.bias']
    assert set(converted) == {k[len('backbone.'):] for k in state
                              if k.startswith('backbone.')}
    expected = resize_pos_embed(state['backbone.pe.pos_embed'], (4, 4),
                                (6, 5), mode='bicubic', num_extra_tokens=0)
    assert converted['pe.pos_embed'].shape == (1, 30, EMBED)
    torch.testing.assert_close(converted['pe.pos_embed'], expected, atol=0,
                               rtol=0)

    # A backbone built for 48x40 inputs loads it strictly and gives what
    # the classifier's backbone gives on 48x40 (PE interpolated on the fly).
    downstream = MPVGViT(arch=ARCH, pe_mode='mpvg', img_size=(48, 40),
                         patch_size=PATCH, out_type='featmap').eval()
    downstream.load_state_dict(converted, strict=True)
    model.backbone.out_type = 'featmap'
    big = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        torch.testing.assert_close(downstream(big)[0],
                                   model.backbone(big)[0], **TOL)


def test_classifier_to_backbone_keeps_class_token_row():
    state = classifier('lape', seed=6).state_dict()
    state['data_preprocessor.extra'] = torch.zeros(1)  # any other key
    converted, unused = convert_classifier_to_backbone(
        state, patch_resolution=(5, 3))
    assert unused == ['head.fc.weight', 'head.fc.bias',
                      'data_preprocessor.extra']
    src_pos = state['backbone.pe.pos_embed']
    pos = converted['backbone.pe.pos_embed']
    assert pos.shape == (1, 1 + 15, EMBED)
    assert torch.equal(pos[:, :1], src_pos[:, :1])
    torch.testing.assert_close(
        pos, resize_pos_embed(src_pos, (4, 4), (5, 3), mode='bicubic',
                              num_extra_tokens=1), atol=0, rtol=0)

    # 'backbone.' keys as an mmdet/mmseg model has them: strict load.
    holder = nn.Module()
    holder.backbone = MPVGViT(arch=ARCH, pe_mode='lape', img_size=(40, 24),
                              patch_size=PATCH)
    holder.load_state_dict(converted, strict=True)

    # Without a target grid the PE is left as it is.
    same, _ = convert_classifier_to_backbone(state)
    assert same['backbone.pe.pos_embed'] is src_pos


def test_classifier_to_backbone_wrong_prefix():
    state = classifier('cls').state_dict()
    with pytest.raises(ValueError,
                       match=r"No key of the checkpoint starts with "
                       r"'model\.'; its keys start with \['backbone\.', "
                       r"'head\.'\]"):
        convert_classifier_to_backbone(state, src_prefix='model.')
    with pytest.raises(ValueError, match='either patch_resolution or '
                       'img_size, not both'):
        convert_classifier_to_backbone(state, img_size=64,
                                       patch_resolution=8)


# ---------------------------------------------------------------------- #
# what cannot be converted
# ---------------------------------------------------------------------- #
def test_rejects_distilled_deit():
    state = randomise(VisionTransformerDistilled(**timm_kwargs()),
                      seed=7).state_dict()
    with pytest.raises(ValueError, match=r'distilled DeiT checkpoint '
                       r'\(dist_token / head_dist\).*convert the '
                       r'non-distilled DeiT.*Accepted: a timm/DeiT'):
        convert_timm_to_mpvg(state)


def test_rejects_timm_without_class_token():
    # GAP with the final norm per token (fc_norm=False): no fc_norm key,
    # but no cls_token either.
    state = timm_vit(class_token=False, global_pool='avg',
                     fc_norm=False).state_dict()
    with pytest.raises(ValueError,
                       match=r'The timm checkpoint has no cls_token: it is '
                       r'not a class-token ViT.*converts class-token models '
                       r"only \(MPVGViT pe_mode 'cls' / 'lape'\)"):
        convert_timm_to_mpvg(state)
    state = timm_vit(class_token=False, global_pool='avg').state_dict()
    with pytest.raises(ValueError, match=r'GAP timm model \(fc_norm'):
        convert_timm_to_mpvg(state)


def test_rejects_mismatched_checkpoints():
    timm_sd = timm_vit().state_dict()
    lape_sd = randomise(LaPEReference(**timm_kwargs()), seed=0).state_dict()
    with pytest.raises(ValueError, match=r'LaPE checkpoint.*lape2mpvg\.py'):
        convert_timm_to_mpvg(lape_sd)
    with pytest.raises(ValueError, match=r'It has no pe_norm at all.*'
                       r'deit2mpvg\.py'):
        convert_lape_to_mpvg(timm_sd)
    partial = {k: v for k, v in lape_sd.items()
               if not k.startswith('blocks.1.pe_norm')}
    with pytest.raises(ValueError, match=r"lacks \['blocks\.1\.pe_norm"):
        convert_lape_to_mpvg(partial)

    broken = dict(timm_sd, **{'blocks.0.ls1.gamma': torch.ones(EMBED)})
    with pytest.raises(ValueError, match='LayerScale'):
        convert_timm_to_mpvg(broken)
    broken = dict(timm_sd, extra_thing=torch.ones(1))
    with pytest.raises(ValueError, match=r"does not know: \['extra_thing'\]"):
        convert_timm_to_mpvg(broken)
    broken = {k: v for k, v in timm_sd.items() if k != 'blocks.2.norm2.bias'}
    with pytest.raises(ValueError, match=r"lacks 1 required key\(s\): "
                       r"\['blocks\.2\.norm2\.bias'\]"):
        convert_timm_to_mpvg(broken)
    broken = dict(timm_sd, pos_embed=timm_sd['pos_embed'][:, 1:])
    with pytest.raises(ValueError, match='no class-token row'):
        convert_timm_to_mpvg(broken)


@pytest.mark.parametrize('pe_mode', ['lape', 'mpvg', 'gap'])
def test_reverse_rejects_non_cls_models(pe_mode):
    state = classifier(pe_mode).state_dict()
    match = ('no backbone.cls_token, so it is a GAP model' if pe_mode == 'gap'
             else "layer-wise PE LayerNorms .* Only MPVGViT pe_mode='cls'")
    with pytest.raises(ValueError, match=match):
        convert_mpvg_to_timm(state)


def test_unwrap_and_load_training_checkpoints(tmp_path):
    state = timm_vit().state_dict()
    deit_style = {'model': state, 'optimizer': {'state': {}}, 'epoch': 3,
                  'args': argparse.Namespace(model='deit_tiny', lr=5e-4)}
    path = str(tmp_path / 'deit.pth')
    torch.save(deit_style, path)
    unwrapped, ignored = unwrap_state_dict(load_checkpoint(path))
    assert ignored == ['optimizer', 'epoch', 'args']
    assert unwrapped.keys() == state.keys()

    unwrapped, ignored = unwrap_state_dict(
        {'state_dict': {'module.' + k: v for k, v in state.items()},
         'meta': {}})
    assert ignored == ['meta'] and unwrapped.keys() == state.keys()
    with pytest.raises(ValueError, match='No state dict found'):
        unwrap_state_dict({'epoch': 3, 'args': 'x'})


def test_save_checkpoint_never_overwrites(tmp_path):
    path = str(tmp_path / 'out' / 'sub' / 'x.pth')
    save_checkpoint({'a': torch.ones(1)}, path)
    before = digest(path)
    with pytest.raises(FileExistsError, match='already exists; it was left '
                       'unchanged.*--force'):
        save_checkpoint({'a': torch.zeros(1)}, path)
    assert digest(path) == before
    save_checkpoint({'a': torch.zeros(1)}, path, force=True)
    assert torch.equal(load_checkpoint(path)['a'], torch.zeros(1))
    assert os.listdir(osp.dirname(path)) == ['x.pth']  # no temporary left


# ---------------------------------------------------------------------- #
# the command lines
# ---------------------------------------------------------------------- #
def test_cli_in_process(tmp_path, capsys, images):
    deit2mpvg = load_tool('deit2mpvg')
    lape2mpvg = load_tool('lape2mpvg')
    mpvg2backbone = load_tool('mpvg2backbone')

    src = timm_vit(seed=8)
    timm_path = str(tmp_path / 'timm.pth')
    torch.save({'model': src.state_dict(), 'epoch': 1}, timm_path)
    mpvg_path = str(tmp_path / 'new' / 'dir' / 'mpvg.pth')
    deit2mpvg.main([timm_path, mpvg_path])
    out = capsys.readouterr().out
    assert 'not converted (other checkpoint entries): epoch' in out
    assert ("backbone=dict(type='MPVGViT', arch=dict(embed_dims=32, "
            'num_layers=3, num_heads=<not stored in weights>, '
            "feedforward_channels=64, qkv_bias=True), pe_mode='cls', "
            'img_size=32, patch_size=8)') in out
    saved = load_checkpoint(mpvg_path)
    assert saved['meta']['converter'] == 'deit2mpvg'
    model = classifier('cls')
    model.load_state_dict(saved['state_dict'], strict=True)

    back_path = str(tmp_path / 'back.pth')
    deit2mpvg.main(['--reverse', mpvg_path, back_path])
    back = load_checkpoint(back_path)
    assert all(torch.equal(back[k], v) for k, v in src.state_dict().items())
    assert back.keys() == src.state_dict().keys()

    lape = randomise(LaPEReference(**timm_kwargs()), seed=9)
    lape_path = str(tmp_path / 'lape.pth')
    torch.save({'model': lape.state_dict()}, lape_path)
    lape_out = str(tmp_path / 'lape_mpvg.pth')
    lape2mpvg.main([lape_path, lape_out])
    out = capsys.readouterr().out
    assert "pe_mode='lape'" in out
    # What the weights cannot show is printed under the config.
    assert ('          #   pe_at_input=False (pos_0 not added to the tokens '
            'before block 0)') in out
    assert '          #   hierarchical_pe=True' in out
    model = classifier('lape')
    model.load_state_dict(load_checkpoint(lape_out)['state_dict'],
                          strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'),
                                   lape(images), **TOL)

    backbone_path = str(tmp_path / 'backbone.pth')
    mpvg2backbone.main([lape_out, backbone_path, '--img-size', '48'])
    out = capsys.readouterr().out
    assert '2 unused key(s):' in out
    assert f'    head.fc.weight ({CLASSES}, {EMBED})' in out
    assert f'    head.fc.bias ({CLASSES},)' in out
    assert f'resized from (1, 17, {EMBED}) to (1, 37, {EMBED})' in out
    state = load_checkpoint(backbone_path)['state_dict']
    assert state['backbone.pe.pos_embed'].shape == (1, 37, EMBED)

    # Errors: exit status 1 and the converter's message, nothing written.
    with pytest.raises(SystemExit) as exc:
        deit2mpvg.main([lape_path, str(tmp_path / 'never.pth')])
    assert exc.value.code == 1
    assert 'deit2mpvg.py: error: Cannot convert: this is a LaPE checkpoint' \
        in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'never.pth')
    with pytest.raises(SystemExit) as exc:
        mpvg2backbone.main([lape_out, str(tmp_path / 'never.pth'),
                            '--src-prefix', 'model.'])
    assert exc.value.code == 1
    assert ("error: No key of the checkpoint starts with 'model.'"
            in capsys.readouterr().err)
    with pytest.raises(SystemExit) as exc:
        deit2mpvg.main([timm_path, timm_path, '--force'])
    assert 'is the source checkpoint' in capsys.readouterr().err


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    mpvg2backbone = load_tool('mpvg2backbone')
    cls_path = str(tmp_path / 'cls.pth')
    torch.save({'state_dict': classifier('cls', seed=11).state_dict()},
               cls_path)
    existing = str(tmp_path / 'existing.pth')
    with open(existing, 'wb') as f:
        f.write(b'precious user data')
    before = digest(existing)
    with pytest.raises(SystemExit) as exc:
        mpvg2backbone.main([cls_path, existing, '--img-size', '64'])
    assert exc.value.code == 1
    assert (f"mpvg2backbone.py: error: Output file {existing!r} already "
            'exists; it was left unchanged. Choose another path, or pass '
            '--force to replace it.\n') == capsys.readouterr().err
    assert digest(existing) == before

    mpvg2backbone.main([cls_path, existing, '--img-size', '64', '--force'])
    assert 'Saved to' in capsys.readouterr().out
    state = load_checkpoint(existing)['state_dict']
    assert state['backbone.pe.pos_embed'].shape == (1, 1 + 64, EMBED)


def test_cli_subprocess(tmp_path):
    """The command line as users run it (pays one import of mmpvg)."""
    timm_path = str(tmp_path / 'timm.pth')
    torch.save({'model': timm_vit(seed=10).state_dict()}, timm_path)
    out_path = str(tmp_path / 'out' / 'mpvg.pth')
    python = osp.join(ROOT, '.venv', 'bin', 'python')
    if not osp.isfile(python):
        python = sys.executable
    proc = subprocess.run(
        [python, osp.join(CONVERTERS, 'deit2mpvg.py'), timm_path, out_path],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'),
        capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Converted {timm_path} (timm/DeiT ViT -> MPVGViT pe_mode='cls')" \
        in proc.stdout
    assert 'every key of the source state dict used' in proc.stdout
    assert f'Saved to {out_path}' in proc.stdout
    state = load_checkpoint(out_path)['state_dict']
    expected = convert_timm_to_mpvg(load_checkpoint(timm_path)['model'])
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], v) for k, v in expected.items())
