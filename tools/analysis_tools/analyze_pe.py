# Copyright (c) mmpvg contributors. All rights reserved.
"""The paper's position-embedding analysis of a checkpoint (Fig. 2/4, appx).

Builds the classifier of an mmpretrain config, loads a checkpoint with
strict key checking, runs up to ``--num-images`` images of a folder through
its MPVGViT backbone and writes, under ``--out-dir``:

- ``pe_analysis.json``: every number (per-layer correlation of LN_l(x_l)
  and the PE added there, Last-LN bias variance, cosine similarities,
  norm maps) with the config, checkpoint, pe_mode and number of images;
- ``pe_maps.npz``: the batch-averaged token maps (L, N, D) and the PE maps
  (``pe_map_<l>``, N x D) behind the correlations; for a staged backbone
  (Swin), whose blocks have their stage's grid and width, one token map
  per block (``token_map_<l>``, N_s x C_s);
- ``layer<l>_maps.png``: token map and PE map of each chosen block
  (tokens on the vertical axis, channels on the horizontal one);
- ``correlation.png``: correlation per block (models with a layer-wise PE);
- ``norm_maps.png``: per-token L2 norms before / after the Last LN.

The JSON lists every stage (its grid, width and blocks) and each block's
stage; a single-stage model (ViT) has one.

Images (jpg, jpeg, png, bmp; searched recursively, sorted by path) are
resized to the backbone's ``img_size`` (bilinear, no crop) and normalised by
the config's ``data_preprocessor`` (its mean/std and channel order).
``--layers`` are 0-based block indices, as in the paper's "layer 1, 4, 7,
11" of a 12-block DeiT.

Example:
    python tools/analysis_tools/analyze_pe.py \
        configs/demo/vit-demo-mpvg_1xb64_demo-digits.py \
        work_dirs/demo/vit-demo-mpvg_1xb64_demo-digits/epoch_30.pth \
        --img-dir data/demo_digits/val --num-images 64 --layers 1 3 5
"""
import argparse
import json
import os
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


def fail(message: str):
    """Exit with status 1 and ``message`` on stderr (no traceback)."""
    raise SystemExit(f'analyze_pe.py: error: {message}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Position-embedding analysis of a checkpoint of an mmpvg '
        'backbone (MPVGViT, MPVGSwin, ...).')
    parser.add_argument('config', help='mmpretrain config of the model')
    parser.add_argument('checkpoint', help='checkpoint of that model')
    parser.add_argument('--img-dir', required=True,
                        help='folder searched recursively for images')
    parser.add_argument('--num-images', type=int, default=64,
                        help='use at most this many images (default 64)')
    parser.add_argument('--layers', type=int, nargs='+',
                        help='0-based blocks to draw map heatmaps for '
                        '(default: 1 4 7 11 when the model has 12+ blocks, '
                        'else up to four evenly spaced blocks)')
    parser.add_argument('--out-dir',
                        help='output folder (default: '
                        'work_dirs/pe_analysis/<config name>)')
    parser.add_argument('--force', action='store_true',
                        help='replace an earlier analysis in --out-dir '
                        '(without it, refused)')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='images per forward pass (default 32)')
    parser.add_argument('--include-cls-token', action='store_true',
                        help='keep the class-token row in the maps and '
                        'correlations (default: patch tokens only)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    args = parser.parse_args(argv)
    if args.num_images < 1:
        parser.error('--num-images must be >= 1')
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    return args


def find_images(img_dir: str, num_images: int) -> list:
    """Up to ``num_images`` image paths under ``img_dir``, sorted."""
    if not osp.isdir(img_dir):
        fail(f'--img-dir {img_dir!r} is not a directory.')
    found = []
    for root, dirs, files in os.walk(img_dir):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMG_EXTENSIONS):
                found.append(osp.join(root, name))
    if not found:
        fail(f'no images ({", ".join(IMG_EXTENSIONS)}) found under '
             f'{img_dir!r} (searched recursively).')
    return sorted(found)[:num_images]


def build_model(config: str, checkpoint: str, device: str):
    """The config's model with the checkpoint loaded (strict), in eval."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import mmpvg  # noqa: F401  (registers MPVGViT, allows mmengine ckpts)
    from mmpretrain.registry import MODELS

    from mmpvg.models import PEBackbone

    cfg = Config.fromfile(config)
    scope = cfg.get('default_scope', 'mmpretrain')
    if scope != 'mmpretrain':
        fail(f'{config}: default_scope={scope!r}; the PE analysis builds '
             'classifiers from mmpretrain configs.')
    init_default_scope(scope)
    model_cfg = cfg.model.copy()
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor'):
        # as mmengine's Runner does
        model_cfg['data_preprocessor'] = cfg.data_preprocessor
    model = MODELS.build(model_cfg)
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, PEBackbone):
        fail(f'{config}: the model\'s backbone is '
             f'{type(backbone).__name__}, not an mmpvg backbone family '
             '(MPVGViT, ...).')
    try:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    except (RuntimeError, ValueError, KeyError) as e:
        fail(f'checkpoint {checkpoint!r} does not match the model of '
             f'{config} (pe_mode={backbone.pe_mode!r}, '
             f'embed_dims={backbone.embed_dims}, '
             f'num_layers={backbone.num_layers}); another arch or pe_mode? '
             f'{e}')
    return model.to(device).eval()


def load_images(paths: list, model):
    """Resize to the backbone's img_size and apply the data preprocessor."""
    import numpy as np
    import torch
    from PIL import Image

    h, w = model.backbone.img_size
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img = img.convert('RGB').resize((w, h), Image.BILINEAR)
        except OSError as e:
            fail(f'cannot read image {path!r}: {e}')
        # BGR, as mmpretrain's LoadImageFromFile gives the preprocessor
        arrays.append(np.asarray(img)[..., ::-1].transpose(2, 0, 1))
    inputs = torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))
    pre = model.data_preprocessor
    with torch.no_grad():
        inputs = pre(dict(inputs=inputs, data_samples=None), False)['inputs']
    info = dict(img_size=[h, w], resize='bilinear', to_rgb=bool(
        getattr(pre, 'to_rgb', False)))
    if getattr(pre, '_enable_normalize', False):
        info.update(mean=pre.mean.flatten().tolist(),
                    std=pre.std.flatten().tolist())
    else:
        info.update(mean=None, std=None)
    return inputs, info


def parse_layers(layers, num_layers: int) -> list:
    from mmpvg.analysis import default_layers
    if not layers:
        return default_layers(num_layers)
    bad = [i for i in layers if not -num_layers <= i < num_layers]
    if bad:
        fail(f'--layers {bad} out of range: the model has {num_layers} '
             f'blocks (0..{num_layers - 1}).')
    return sorted({i % num_layers for i in layers})


# ---------------------------------------------------------------------- #
# figures
# ---------------------------------------------------------------------- #
def _heatmap(ax, fig, data, title):
    import numpy as np
    vmax = float(np.abs(data).max()) or 1.0
    im = ax.imshow(data, aspect='auto', cmap='RdBu_r', vmin=-vmax, vmax=vmax,
                   interpolation='nearest')
    ax.set_title(title, fontsize=9)
    ax.set_xlabel('channel')
    ax.set_ylabel('token')
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def plot_layer_maps(analysis, layer: int, path: str):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    stage = analysis.stage_of_block[layer]
    where = ''
    if len(analysis.stage_hw) > 1:
        h, w = analysis.stage_hw[stage]
        where = (f' (stage {stage}, {h}x{w} tokens, '
                 f'{analysis.stage_dims[stage]} channels)')
    _heatmap(axes[0], fig, analysis.token_map(layer).numpy(),
             f'block {layer}: LN_{layer}(x_{layer}), batch mean')
    pe = analysis.pe_maps[layer]
    if pe is None:
        reason = ('no layer-wise PE in this model'
                  if not analysis.layerwise_pe else
                  f'block {layer} receives no PE')
        axes[1].text(0.5, 0.5, reason, ha='center', va='center')
        axes[1].set_axis_off()
        fig.suptitle(f'{analysis.pe_mode}, block {layer}{where}')
    else:
        _heatmap(axes[1], fig, pe.numpy(), f'PE added at block {layer}')
        fig.suptitle(f'{analysis.pe_mode}, block {layer}{where}: Pearson '
                     f'r = {analysis.correlations[layer]:.3f}')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_correlation(analysis, path: str):
    import matplotlib.pyplot as plt
    xs = [i for i, c in enumerate(analysis.correlations) if c is not None]
    ys = [analysis.correlations[i] for i in xs]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(xs, ys, marker='o', label=analysis.pe_mode)
    ax.axhline(0, color='grey', lw=0.8)
    for b in range(1, analysis.num_layers):  # stage boundaries (Swin)
        if analysis.stage_of_block[b] != analysis.stage_of_block[b - 1]:
            ax.axvline(b - 0.5, color='grey', lw=0.8, ls=':')
    ax.set_xlabel('block')
    ax.set_ylabel('corr(LN_l(x_l), PE_l)')
    ax.set_xticks(range(analysis.num_layers))
    ax.set_title('Token map vs. PE map correlation')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_norm_maps(analysis, path: str):
    import matplotlib.pyplot as plt
    panels = [('before Last LN', analysis.norm_map_before_ln),
              ('after Last LN', analysis.norm_map_after_ln),
              ('after Last LN + PE', analysis.norm_map_after_ln_pe)]
    panels = [(t, m) for t, m in panels if m is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4),
                             squeeze=False)
    for ax, (title, grid) in zip(axes[0], panels):
        im = ax.imshow(grid.numpy(), cmap='viridis', interpolation='nearest')
        ax.set_title(f'L2 norm, {title}', fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f'{analysis.pe_mode}: per-token norms (mean over images)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_maps(analysis, path: str):
    import numpy as np
    import torch
    if isinstance(analysis.token_maps, torch.Tensor):
        arrays = dict(token_maps=analysis.token_maps.numpy())
    else:  # staged: each block's map has its stage's shape
        arrays = {f'token_map_{i}': t.numpy()
                  for i, t in enumerate(analysis.token_maps)}
    for i, pe in enumerate(analysis.pe_maps):
        if pe is not None:
            arrays[f'pe_map_{i}'] = pe.numpy()
    np.savez_compressed(path, **arrays)


def previous_analysis(out_dir: str) -> list:
    """The files of an earlier analysis in ``out_dir`` that a new one
    would replace, sorted."""
    if not osp.isdir(out_dir):
        return []
    fixed = ('pe_analysis.json', 'pe_maps.npz', 'correlation.png',
             'norm_maps.png')
    return sorted(name for name in os.listdir(out_dir) if name in fixed or (
        name.startswith('layer') and name.endswith('_maps.png')))


def main(argv=None):
    args = parse_args(argv)
    for name, path in (('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            fail(f'{name} file {path!r} does not exist.')
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'pe_analysis', osp.splitext(osp.basename(args.config))[0])
    earlier = previous_analysis(out_dir)
    if earlier and not args.force:
        fail(f'--out-dir {out_dir!r} already holds an analysis '
             f'({", ".join(earlier)}); refusing to overwrite it. Pass '
             '--force to replace it, or choose another --out-dir.')
    # Fail fast on a bad folder, before the slow imports.
    paths = find_images(args.img_dir, args.num_images)

    import matplotlib
    matplotlib.use('Agg')

    from mmpvg.analysis import analyze_pe

    model = build_model(args.config, args.checkpoint, args.device)
    layers = parse_layers(args.layers, model.backbone.num_layers)
    images, preprocess = load_images(paths, model)
    analysis = analyze_pe(model.backbone, images, batch_size=args.batch_size,
                          include_cls_token=args.include_cls_token)

    os.makedirs(out_dir, exist_ok=True)
    figures = {}
    for layer in layers:
        name = f'layer{layer:02d}_maps.png'
        plot_layer_maps(analysis, layer, osp.join(out_dir, name))
        figures[f'layer_{layer}'] = name
    if analysis.layerwise_pe:
        plot_correlation(analysis, osp.join(out_dir, 'correlation.png'))
        figures['correlation'] = 'correlation.png'
    else:
        print('No layer-wise PE in this model: no correlation curve.')
    plot_norm_maps(analysis, osp.join(out_dir, 'norm_maps.png'))
    figures['norm_maps'] = 'norm_maps.png'
    save_maps(analysis, osp.join(out_dir, 'pe_maps.npz'))

    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        img_dir=args.img_dir,
        images=[osp.relpath(p, args.img_dir) for p in paths],
        preprocess=preprocess,
        layers_plotted=layers,
        figures=figures,
        maps_file='pe_maps.npz',
        **analysis.to_dict())
    json_path = osp.join(out_dir, 'pe_analysis.json')
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=2, allow_nan=False)

    corr = ', '.join('-' if c is None else f'{c:.3f}'
                     for c in result['correlation'])
    print(f'pe_mode={analysis.pe_mode}, {analysis.num_images} images; '
          f'correlation per block: [{corr}]')
    if len(result['stages']) > 1:
        for stage in result['stages']:
            print(f"stage {stage['index']}: {stage['grid'][0]}x"
                  f"{stage['grid'][1]} tokens, {stage['embed_dims']} "
                  f"channels, blocks {stage['blocks']}")
    print(f'Wrote {json_path} and {len(figures)} figures to {out_dir}')


if __name__ == '__main__':
    sys.exit(main())
