"""The PE analysis (mmpvg.analysis) and its tools, on tiny random models.

Every number the library returns is checked against a direct computation:
LN_l(x_l) and the PE actually added are captured with hooks during the
model's own forward (``MPVGViT.forward``), the Last LN is recomputed with
``F.layer_norm``, the PE chain with ``F.layer_norm`` on pos_0, correlations
with ``np.corrcoef``.
"""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from mmpvg.testing import REPO_ROOT, TOOL_TIMEOUT, load_tool
from mmpvg.analysis import (PEAnalysis, analyze_pe, default_layers,
                            has_layerwise_pe, layer_pe_map,
                            pearson_correlation)
from mmpvg.models import MPVGViT

ARCH = dict(embed_dims=32, num_layers=4, num_heads=4, feedforward_channels=64)
EPS = 1e-6
ALL_MODES = ['cls', 'gap', 'lape', 'pvg', 'mpvg']
LAYERWISE_MODES = ['lape', 'pvg', 'mpvg']
PYTHON = sys.executable


def randomise(module: nn.Module, seed: int = 0):
    """Random values for every parameter, LayerNorm affine ones included."""
    g = torch.Generator().manual_seed(seed)
    done = set()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.5 * torch.randn(m.weight.shape,
                                                     generator=g))
                m.bias.copy_(0.5 * torch.randn(m.bias.shape, generator=g))
                done.update((id(m.weight), id(m.bias)))
        for name, p in module.named_parameters():
            if id(p) in done:
                continue
            scale = 0.2 if p.ndim >= 2 and 'pos_embed' not in name else 0.5
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return module


def tiny_backbone(mode, seed=0, **kwargs):
    bb = MPVGViT(arch=ARCH, img_size=32, patch_size=8, pe_mode=mode,
                 **kwargs)
    return randomise(bb, seed).eval()


def images(num=3, seed=1, size=32):
    return torch.randn(num, 3, size, size,
                       generator=torch.Generator().manual_seed(seed))


def reference(bb: MPVGViT, imgs: torch.Tensor):
    """Capture what MPVGViT.forward computes, with hooks (float64 numpy)."""
    rec = {'norm1': {}, 'attn_in': {}}
    handles = []
    for i, block in enumerate(bb.blocks):
        handles.append(block.norm1.register_forward_hook(
            lambda m, a, out, i=i: rec['norm1'].__setitem__(i, out)))
        handles.append(block.attn.register_forward_pre_hook(
            lambda m, a, i=i: rec['attn_in'].__setitem__(i, a[0])))
    handles.append(bb.norm.register_forward_hook(
        lambda m, a, out: rec.update(x_L=a[0], y=out)))
    old = bb.out_type
    bb.out_type = 'raw'  # the final tokens, after the Last-LN PE term
    try:
        with torch.no_grad():
            rec['z'] = bb(imgs)[-1]
    finally:
        bb.out_type = old
        for h in handles:
            h.remove()
    return {k: ({i: t.double().numpy() for i, t in v.items()}
                if isinstance(v, dict) else v.double().numpy())
            for k, v in rec.items()}


def hand_pe_chain(bb: MPVGViT, mode: str):
    """PE per block from pos_0 and the PE LayerNorms, as the spec says."""
    pe = bb.pe
    pos0 = pe.pos_embed.detach().double()

    @torch.no_grad()
    def ln(x, norm):
        return F.layer_norm(x, (x.shape[-1], ), norm.weight.double(),
                            norm.bias.double(), EPS)

    layers = [None] * bb.num_layers
    first = 0 if mode == 'lape' else 1
    pos = pos0
    for i in range(first, bb.num_layers):
        pos = ln(pos, pe.norms[str(i)])
        layers[i] = pos[0].numpy()
    last = ln(pos0, pe.last_norm)[0].numpy() if mode == 'mpvg' else None
    return layers, last


def cos_rows(a, b):
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) *
                              np.linalg.norm(b, axis=-1))


# ---------------------------------------------------------------------- #
# library
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('mode', ALL_MODES)
def test_numbers_match_direct_computation(mode):
    bb = tiny_backbone(mode)
    imgs = images()
    ref = reference(bb, imgs)
    res = analyze_pe(bb, imgs, batch_size=2)  # chunks of 2 + 1
    extra = int(mode in ('cls', 'lape'))
    L, D, (h, w) = 4, 32, (4, 4)

    assert isinstance(res, PEAnalysis)
    assert res.num_images == 3 and res.patch_resolution == (4, 4)
    assert res.pe_mode == mode and res.with_cls_token == bool(extra)
    assert res.token_maps.shape == (L, h * w, D)
    # token maps: batch mean of LN_l(x_l), patch rows
    for i in range(L):
        expect = ref['norm1'][i][:, extra:].mean(0)
        np.testing.assert_allclose(res.token_map(i).numpy(), expect,
                                   rtol=1e-5, atol=1e-5)

    chain, last = hand_pe_chain(bb, mode) if mode in LAYERWISE_MODES else (
        [None] * L, None)
    for i in range(L):
        added = ref['attn_in'][i] - ref['norm1'][i]  # the PE really added
        # one PE for the whole batch
        np.testing.assert_allclose(added, np.broadcast_to(added[:1],
                                                          added.shape),
                                   atol=1e-5)
        if chain[i] is None:
            np.testing.assert_allclose(added, 0, atol=1e-6)
            assert res.pe_maps[i] is None and res.correlations[i] is None
            continue
        np.testing.assert_allclose(added[0], chain[i], atol=1e-5)
        pe_map = res.pe_map(i).numpy()
        assert pe_map.shape == (h * w, D)
        np.testing.assert_allclose(pe_map, added[0, extra:], atol=1e-5)
        token = ref['norm1'][i][:, extra:].mean(0)
        corr = np.corrcoef(token.ravel(), added[0, extra:].ravel())[0, 1]
        assert res.correlations[i] == pytest.approx(corr, abs=1e-5)
        np.testing.assert_allclose(
            layer_pe_map(bb, i).numpy(), added[0, extra:], atol=1e-5)

    # Last LN, by hand
    norm = bb.norm
    x_L = ref['x_L']
    with torch.no_grad():
        y = F.layer_norm(torch.from_numpy(x_L), (D, ), norm.weight.double(),
                         norm.bias.double(), EPS).numpy()
    np.testing.assert_allclose(y, ref['y'], atol=1e-4)
    assert res.last_ln_bias_variance == pytest.approx(
        np.var(norm.bias.detach().double().numpy()), rel=1e-9)
    before = x_L[:, extra:]
    after = y[:, extra:]
    cos = cos_rows(before.mean(1), after.mean(1))
    assert res.cosine_ln['per_image_mean'] == pytest.approx(cos.mean(),
                                                            abs=1e-5)
    assert res.cosine_ln['per_image_std'] == pytest.approx(cos.std(),
                                                           abs=1e-5)
    assert res.cosine_ln['of_batch_mean'] == pytest.approx(
        cos_rows(before.mean((0, 1)), after.mean((0, 1))), abs=1e-5)
    np.testing.assert_allclose(
        res.norm_map_before_ln.numpy(),
        np.linalg.norm(before, axis=-1).mean(0).reshape(h, w), rtol=1e-5)
    np.testing.assert_allclose(
        res.norm_map_after_ln.numpy(),
        np.linalg.norm(after, axis=-1).mean(0).reshape(h, w), rtol=1e-4)

    if mode == 'mpvg':
        z = y + last  # LN_last(x_L) + LN'_last(pos_0)
        np.testing.assert_allclose(z, ref['z'], atol=1e-4)
        z = z[:, extra:]
        cos = cos_rows(before.mean(1), z.mean(1))
        assert res.cosine_ln_pe['per_image_mean'] == pytest.approx(
            cos.mean(), abs=1e-5)
        assert res.cosine_ln_pe['of_batch_mean'] == pytest.approx(
            cos_rows(before.mean((0, 1)), z.mean((0, 1))), abs=1e-5)
        np.testing.assert_allclose(
            res.norm_map_after_ln_pe.numpy(),
            np.linalg.norm(z, axis=-1).mean(0).reshape(h, w), rtol=1e-4)
    else:
        np.testing.assert_allclose(ref['z'], ref['y'])  # nothing added
        assert res.cosine_ln_pe is None and res.norm_map_after_ln_pe is None

    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d['correlation'] == [
        None if c is None else pytest.approx(c) for c in res.correlations]
    np.testing.assert_allclose(d['last_ln']['norm_map_before_ln'],
                               res.norm_map_before_ln.numpy())


@pytest.mark.parametrize('mode', ['cls', 'gap'])
def test_modes_without_layerwise_pe_say_so(mode):
    bb = tiny_backbone(mode)
    assert not has_layerwise_pe(bb)
    res = analyze_pe(bb, images(2))
    d = res.to_dict()
    assert d['layerwise_pe'] is False and d['pe_blocks'] == []
    assert d['correlation'] == [None] * 4
    assert all(not layer['has_pe'] and layer['pe_map_std'] is None
               for layer in d['layers'])
    assert 'no layer-wise PE' in d['notes']['correlation']
    assert 'once at the input' in d['notes']['correlation']
    with pytest.raises(ValueError, match='has no layer-wise PE'):
        res.pe_map(1)
    with pytest.raises(ValueError, match=f"pe_mode='{mode}'.*has no "
                       'layer-wise PE'):
        layer_pe_map(bb, 1)


def test_fig5b_gap_with_last_ln_pe_has_no_layerwise_pe():
    bb = tiny_backbone('gap', last_ln_pe=0)
    res = analyze_pe(bb, images(2))
    assert not res.layerwise_pe and res.correlations == [None] * 4
    assert res.cosine_ln_pe is not None  # the Last-LN PE term is measured
    assert 'after the Last LN' in res.notes['correlation']
    with pytest.raises(ValueError, match='no layer-wise PE'):
        layer_pe_map(bb, 0)


def test_blocks_without_pe_and_options():
    bb = tiny_backbone('pvg')
    with pytest.raises(ValueError, match='Block 0 .* receives no PE'):
        layer_pe_map(bb, 0)
    res = analyze_pe(bb, images(3), batch_size=1)
    with pytest.raises(ValueError, match='Block 0 .* receives no PE'):
        res.pe_map(0)
    assert 'Blocks [0] receive no PE' in res.notes['correlation']
    # chunking does not change the averages
    whole = analyze_pe(bb, images(3), batch_size=8)
    torch.testing.assert_close(res.token_maps, whole.token_maps)
    assert res.correlations == pytest.approx(whole.correlations)
    # dropout and drop path are off while analysing; train mode is restored
    bb = tiny_backbone('pvg', drop_rate=0.3, drop_path_rate=0.3)
    evaluated = analyze_pe(bb, images(3))
    bb.train()
    again = analyze_pe(bb, images(3))
    assert bb.training
    torch.testing.assert_close(again.token_maps, evaluated.token_maps)
    assert again.correlations == pytest.approx(evaluated.correlations)


def test_type_and_input_errors():
    bb = tiny_backbone('mpvg')

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = bb

    with pytest.raises(TypeError, match='pass model.backbone'):
        analyze_pe(Wrapper(), images(1))
    with pytest.raises(ValueError, match='at least one image'):
        analyze_pe(bb, images(0))
    with pytest.raises(ValueError, match='out of range'):
        layer_pe_map(bb, 4)


def test_lape_with_class_token_row():
    bb = tiny_backbone('lape')
    imgs = images(2)
    ref = reference(bb, imgs)
    res = analyze_pe(bb, imgs, include_cls_token=True)
    assert res.to_dict()['token_rows'] == 'cls+patch'
    assert res.token_maps.shape == (4, 17, 32)
    np.testing.assert_allclose(res.token_map(2).numpy(),
                               ref['norm1'][2].mean(0), rtol=1e-5, atol=1e-5)
    added = ref['attn_in'][2][0] - ref['norm1'][2][0]
    np.testing.assert_allclose(res.pe_map(2).numpy(), added, atol=1e-5)
    assert res.correlations[2] == pytest.approx(np.corrcoef(
        ref['norm1'][2].mean(0).ravel(), added.ravel())[0, 1], abs=1e-5)


def test_helpers():
    a = np.random.default_rng(0).normal(size=(5, 7))
    b = a * -2 + np.random.default_rng(1).normal(size=(5, 7))
    assert pearson_correlation(a, b) == pytest.approx(
        np.corrcoef(a.ravel(), b.ravel())[0, 1])
    assert np.isnan(pearson_correlation(np.ones(4), np.arange(4)))
    assert default_layers(12) == [1, 4, 7, 11]
    assert default_layers(4) == [0, 1, 2, 3]
    assert default_layers(7) == [0, 2, 4, 6]
    assert default_layers(1) == [0]


# ---------------------------------------------------------------------- #
# tools (end to end)
# ---------------------------------------------------------------------- #
MEAN, STD = [10., 20., 30.], [50., 60., 70.]  # RGB order (to_rgb=True)


def classifier_cfg(mode, arch=ARCH):
    return dict(
        type='ImageClassifier',
        backbone=dict(type='MPVGViT', arch=dict(arch), img_size=32,
                      patch_size=8, pe_mode=mode),
        neck=None,
        head=dict(type='LinearClsHead', num_classes=10,
                  in_channels=arch['embed_dims']))


def write_config(path, mode):
    path.write_text(
        "default_scope = 'mmpretrain'\n"
        "custom_imports = dict(imports=['mmpvg'], "
        'allow_failed_imports=False)\n'
        f'model = {classifier_cfg(mode)!r}\n'
        f'data_preprocessor = dict(num_classes=10, mean={MEAN!r}, '
        f'std={STD!r}, to_rgb=True)\n')
    return str(path)


def save_classifier(path, mode, arch=ARCH, seed=0):
    from mmpretrain.registry import MODELS
    model = MODELS.build(classifier_cfg(mode, arch))
    randomise(model, seed)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(path))
    return model.eval()


def run_cli(args):
    env = dict(PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS='1', MPLBACKEND='Agg',
               PATH='/usr/bin:/bin', HOME=str(osp.expanduser('~')))
    return subprocess.run([PYTHON] + args, cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('analyze_pe')
    img_dir = tmp / 'imgs'
    (img_dir / 'sub').mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ['a.png', 'b.jpg', 'sub/c.bmp', 'sub/d.PNG', 'z.png']
    for name in names:  # 40x40: resized to the backbone's 32x32
        arr = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
        Image.fromarray(arr).save(img_dir / name,
                                  format='PNG' if name.endswith(('png', 'PNG'))
                                  else None)
    (img_dir / 'notes.txt').write_text('not an image')
    model = save_classifier(tmp / 'mpvg.pth', 'mpvg')
    return dict(tmp=tmp, img_dir=str(img_dir), names=names, model=model,
                config=write_config(tmp / 'tiny_mpvg.py', 'mpvg'),
                ckpt=str(tmp / 'mpvg.pth'))


def preprocess_by_hand(paths):
    arrs = []
    for p in paths:
        with Image.open(p) as img:
            arr = np.asarray(img.convert('RGB').resize((32, 32),
                                                       Image.BILINEAR))
        arrs.append((arr.astype(np.float32) - MEAN) / STD)
    return torch.from_numpy(np.stack(arrs).transpose(0, 3, 1, 2)).float()


def assert_png(path):
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n', path
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.size[0] > 50 and img.size[1] > 50


def assert_close_tree(actual, expected, path='$'):
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), path
        for k in expected:
            assert_close_tree(actual[k], expected[k], f'{path}.{k}')
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close_tree(a, e, f'{path}[{i}]')
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-4, abs=1e-5), path
    else:
        assert actual == expected, path


def test_cli_end_to_end(setup, tmp_path):
    out = tmp_path / 'out'
    proc = run_cli(['tools/analysis_tools/analyze_pe.py', setup['config'],
                    setup['ckpt'], '--img-dir', setup['img_dir'],
                    '--num-images', '4', '--layers', '0', '3', '-1',
                    '--batch-size', '3', '--out-dir', str(out)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'pe_mode=mpvg, 4 images' in proc.stdout

    with open(out / 'pe_analysis.json') as f:
        result = json.load(f)
    used = setup['names'][:4]  # sorted by path; notes.txt is no image
    assert result['images'] == used
    assert result['config'] == setup['config']
    assert result['checkpoint'] == setup['ckpt']
    assert result['num_images'] == 4 and result['pe_mode'] == 'mpvg'
    assert result['preprocess'] == dict(img_size=[32, 32], resize='bilinear',
                                        to_rgb=True, mean=MEAN, std=STD)
    assert result['layers_plotted'] == [0, 3]

    # the same numbers from the library, on images preprocessed by hand
    imgs = preprocess_by_hand([osp.join(setup['img_dir'], n) for n in used])
    expected = analyze_pe(setup['model'].backbone, imgs).to_dict()
    analysis_keys = set(expected)
    assert analysis_keys <= set(result)
    assert_close_tree({k: result[k] for k in analysis_keys}, expected)
    assert set(result) - analysis_keys == {
        'config', 'checkpoint', 'img_dir', 'images', 'preprocess',
        'layers_plotted', 'figures', 'maps_file'}
    assert result['layerwise_pe'] is True
    assert result['correlation'][0] is None
    assert all(isinstance(c, float) for c in result['correlation'][1:])
    assert result['last_ln']['cosine_before_after_ln_pe'] is not None
    assert np.array(result['last_ln']['norm_map_after_ln_pe']).shape == (4, 4)

    assert result['figures'] == {
        'layer_0': 'layer00_maps.png', 'layer_3': 'layer03_maps.png',
        'correlation': 'correlation.png', 'norm_maps': 'norm_maps.png'}
    for name in result['figures'].values():
        assert_png(out / name)
    maps = np.load(out / result['maps_file'])
    assert set(maps.files) == {'token_maps', 'pe_map_1', 'pe_map_2',
                               'pe_map_3'}
    np.testing.assert_allclose(maps['pe_map_2'],
                               layer_pe_map(setup['model'].backbone,
                                            2).numpy(), atol=1e-6)

    # the plot tool, with a model without layer-wise PE among the inputs
    gap = analyze_pe(tiny_backbone('gap'), images(2)).to_dict()
    gap_json = tmp_path / 'gap.json'
    gap_json.write_text(json.dumps(gap))
    fig = tmp_path / 'plots' / 'corr.png'
    proc = run_cli(['tools/analysis_tools/plot_pe_correlation.py',
                    str(out / 'pe_analysis.json'), str(gap_json),
                    str(out / 'pe_analysis.json'), '--labels', 'MPVG', 'GAP',
                    'again', '--out', str(fig)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f'Skipping {gap_json}' in proc.stdout
    assert "pe_mode='gap' has no layer-wise PE" in proc.stdout
    assert '(2 curves)' in proc.stdout
    assert_png(fig)

    proc = run_cli(['tools/analysis_tools/plot_pe_correlation.py',
                    str(gap_json), '--out', str(tmp_path / 'none.png')])
    assert proc.returncode != 0
    assert 'none of the given files has a layer-wise PE' in proc.stderr
    assert not (tmp_path / 'none.png').exists()


def test_cli_errors_in_process(setup, tmp_path):
    tool = load_tool('tools/analysis_tools/analyze_pe.py')
    common = ['--img-dir', setup['img_dir'], '--out-dir',
              str(tmp_path / 'out')]
    # another depth: the checkpoint's extra blocks are named
    deeper = tmp_path / 'deeper.pth'
    save_classifier(deeper, 'mpvg', arch=dict(ARCH, num_layers=6))
    with pytest.raises(SystemExit) as info:
        tool.main([setup['config'], str(deeper)] + common)
    message = str(info.value.code)
    assert message.startswith(
        f"analyze_pe.py: error: checkpoint '{deeper}' does not match the "
        f"model of {setup['config']} (pe_mode='mpvg', embed_dims=32, "
        'num_layers=4); another arch or pe_mode?')
    assert 'unexpected key in source state_dict: ' in message
    assert 'backbone.blocks.4.norm1.weight' in message
    assert 'backbone.blocks.5.' in message
    # another width: pos_embed cannot be loaded
    wider = tmp_path / 'wider.pth'
    save_classifier(wider, 'mpvg', arch=dict(ARCH, embed_dims=48))
    with pytest.raises(SystemExit, match="(?s)does not match the model .*"
                       'pos_embed.*embedding width differs'):
        tool.main([setup['config'], str(wider)] + common)
    # another pe_mode of the same arch: the Last-LN PE norm is missing
    pvg = tmp_path / 'pvg.pth'
    save_classifier(pvg, 'pvg')
    with pytest.raises(SystemExit, match="(?s)pe_mode='mpvg'.*missing keys.*"
                       'backbone.pe.last_norm.weight'):
        tool.main([setup['config'], str(pvg)] + common)
    # folders without images
    empty = tmp_path / 'empty'
    (empty / 'nested').mkdir(parents=True)
    (empty / 'nested' / 'readme.txt').write_text('x')
    with pytest.raises(SystemExit, match='no images .*found under'):
        tool.main([setup['config'], setup['ckpt'], '--img-dir', str(empty)])
    with pytest.raises(SystemExit, match='is not a directory'):
        tool.main([setup['config'], setup['ckpt'], '--img-dir',
                   str(tmp_path / 'missing')])
    with pytest.raises(SystemExit, match=r'--layers \[4\] out of range'):
        tool.main([setup['config'], setup['ckpt'], '--layers', '1', '4'] +
                  common)
    assert not (tmp_path / 'out').exists()


def test_cli_empty_folder_subprocess(setup, tmp_path):
    proc = run_cli(['tools/analysis_tools/analyze_pe.py', setup['config'],
                    setup['ckpt'], '--img-dir', str(tmp_path)])
    assert proc.returncode == 1
    assert 'analyze_pe.py: error: no images (.jpg, .jpeg, .png, .bmp) found ' \
           f"under '{tmp_path}'" in proc.stderr


def test_cli_model_without_layerwise_pe(tmp_path):
    """A cls model: null correlations, no correlation figure."""
    tool = load_tool('tools/analysis_tools/analyze_pe.py')
    config = write_config(tmp_path / 'tiny_cls.py', 'cls')
    save_classifier(tmp_path / 'cls.pth', 'cls')
    img_dir = tmp_path / 'imgs'
    img_dir.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8) + 100).save(
        img_dir / 'x.png')
    out = tmp_path / 'out'
    tool.main([config, str(tmp_path / 'cls.pth'), '--img-dir', str(img_dir),
               '--out-dir', str(out), '--layers', '2'])
    with open(out / 'pe_analysis.json') as f:
        result = json.load(f)
    assert result['layerwise_pe'] is False
    assert result['correlation'] == [None] * 4
    assert 'no layer-wise PE' in result['notes']['correlation']
    assert set(result['figures']) == {'layer_2', 'norm_maps'}
    assert not (out / 'correlation.png').exists()
    for name in result['figures'].values():
        assert_png(out / name)
    proc = run_cli(['tools/analysis_tools/plot_pe_correlation.py',
                    str(out / 'pe_analysis.json'), '--out',
                    str(tmp_path / 'c.png')])
    assert proc.returncode == 1
    assert "Skipping" in proc.stdout and 'none of the given files' in \
        proc.stderr


# ---------------------------------------------------------------------- #
# staged backbones (Swin): per-block maps of their stage's grid and width
# ---------------------------------------------------------------------- #
SWIN = dict(type='MPVGSwin', arch=dict(embed_dims=16, depths=[2, 2],
                                       num_heads=[2, 4]),
            img_size=32, patch_size=4, window_size=4, out_indices=(1, ))


def test_staged_backbone_reports_each_stage(tmp_path):
    """Swin: maps of block l are N_s x C_s of its stage; the report lists the
    stages, the tool writes one token map per block; the per-block PE is the
    one the model adds (captured with hooks on the attention input)."""
    from mmpvg.models import MPVGSwin
    kwargs = {k: v for k, v in SWIN.items() if k != 'type'}
    bb = randomise(MPVGSwin(pe_mode='pvg', **kwargs)).eval()
    imgs = images(3)
    res = analyze_pe(bb, imgs, batch_size=2)
    assert res.stage_of_block == [0, 0, 1, 1]
    assert res.stage_hw == [(8, 8), (4, 4)] and res.stage_dims == [16, 32]
    assert res.patch_resolution == (8, 8)
    assert [tuple(res.token_map(i).shape) for i in range(4)] == [
        (64, 16), (64, 16), (16, 32), (16, 32)]
    assert res.norm_map_before_ln.shape == (4, 4)
    # what the forward adds to LN_1(x) at the attention input, by hooks
    seen = {}
    blocks = [b for stage in bb.stages for b in stage.blocks]
    handles = []
    for i, blk in enumerate(blocks):
        handles.append(blk.norm1.register_forward_hook(
            lambda m, a, out, i=i: seen.__setitem__(('ln', i), out)))
        handles.append(blk.attn.register_forward_pre_hook(
            lambda m, a, i=i: seen.__setitem__(('in', i), a[0])))
    with torch.no_grad():
        bb(imgs)
    for h in handles:
        h.remove()
    for i in range(4):
        pe = (seen['in', i] - seen['ln', i]).mean(0)
        np.testing.assert_allclose(res.pe_map(i).numpy(), pe.double().numpy(),
                                   atol=1e-5)
        np.testing.assert_allclose(layer_pe_map(bb, i).numpy(),
                                   pe.numpy(), atol=1e-5)
        assert res.correlations[i] == pytest.approx(np.corrcoef(
            seen['ln', i].double().mean(0).flatten().numpy(),
            pe.double().flatten().numpy())[0, 1], abs=1e-6)
    d = res.to_dict()
    assert d['stages'] == [
        dict(index=0, grid=[8, 8], embed_dims=16, blocks=[0, 1]),
        dict(index=1, grid=[4, 4], embed_dims=32, blocks=[2, 3])]
    assert [layer['stage'] for layer in d['layers']] == [0, 0, 1, 1]

    # the tool, in process
    from mmpretrain.registry import MODELS
    model_cfg = dict(type='ImageClassifier',
                     backbone=dict(SWIN, pe_mode='mpvg'),
                     neck=dict(type='GlobalAveragePooling'),
                     head=dict(type='LinearClsHead', num_classes=10,
                               in_channels=32))
    model = randomise(MODELS.build(model_cfg))
    torch.save(dict(state_dict=model.state_dict(), meta=dict()),
               str(tmp_path / 'swin.pth'))
    config = tmp_path / 'swin.py'
    config.write_text(
        "default_scope = 'mmpretrain'\n"
        "custom_imports = dict(imports=['mmpvg'], "
        'allow_failed_imports=False)\n'
        f'model = {model_cfg!r}\n'
        f'data_preprocessor = dict(num_classes=10, mean={MEAN!r}, '
        f'std={STD!r}, to_rgb=True)\n')
    img_dir = tmp_path / 'imgs'
    img_dir.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8) + 100).save(
        img_dir / 'x.png')
    out = tmp_path / 'out'
    load_tool('tools/analysis_tools/analyze_pe.py').main([
        str(config), str(tmp_path / 'swin.pth'), '--img-dir', str(img_dir),
        '--out-dir', str(out), '--layers', '1', '2'])
    with open(out / 'pe_analysis.json') as f:
        result = json.load(f)
    assert [s['grid'] for s in result['stages']] == [[8, 8], [4, 4]]
    assert result['last_ln']['cosine_before_after_ln_pe'] is not None
    assert all(isinstance(c, float) for c in result['correlation'])
    maps = np.load(out / 'pe_maps.npz')
    assert maps['token_map_3'].shape == (16, 32)
    assert maps['pe_map_0'].shape == (64, 16)
    for name in result['figures'].values():
        assert_png(out / name)
