# Copyright (c) mmpvg contributors. All rights reserved.
"""Per-block token/PE correlation curves of several analyses on one plot.

Reads ``pe_analysis.json`` files written by ``analyze_pe.py``. Files of
models without a layer-wise PE (``cls``, ``gap``, ``layerwise_pe=False``)
have no curve: they are skipped with a note, and it is an error if no file
is left.

Example:
    python tools/analysis_tools/plot_pe_correlation.py \
        work_dirs/pe_analysis/lape/pe_analysis.json \
        work_dirs/pe_analysis/mpvg/pe_analysis.json \
        --labels LaPE MPVG --out work_dirs/pe_analysis/correlation.png
"""
import argparse
import json
import os
import os.path as osp
import sys
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))


def fail(message: str):
    raise SystemExit(f'plot_pe_correlation.py: error: {message}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('files', nargs='+', help='pe_analysis.json files')
    parser.add_argument('--labels', nargs='+',
                        help='one legend label per file (default: pe_mode)')
    parser.add_argument('--out', default='pe_correlation.png',
                        help='output PNG (default: pe_correlation.png)')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing --out file')
    parser.add_argument('--title', default='Token map vs. PE map correlation')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.files):
        parser.error(f'--labels has {len(args.labels)} entries for '
                     f'{len(args.files)} files.')
    return args


def load_curve(path: str):
    """(pe_mode, [(block, correlation)]), or (pe_mode, None) if no curve."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        fail(f'cannot read {path!r}: {e}')
    if not isinstance(data, dict) or 'correlation' not in data:
        fail(f'{path!r} is not a pe_analysis.json (no "correlation" key).')
    mode = data.get('pe_mode', '?')
    points = [(i, c) for i, c in enumerate(data['correlation'])
              if c is not None]
    if not data.get('layerwise_pe', True) or not points:
        return mode, None
    return mode, points


def main(argv=None):
    args = parse_args(argv)
    if osp.lexists(args.out) and not args.force:
        fail(f'--out {args.out!r} already exists; refusing to overwrite it. '
             'Pass --force to replace it, or choose another --out.')
    labels = args.labels or [None] * len(args.files)
    curves = []
    for path, label in zip(args.files, labels):
        mode, points = load_curve(path)
        if points is None:
            print(f'Skipping {path}: pe_mode={mode!r} has no layer-wise PE '
                  '(no per-layer correlation).')
            continue
        curves.append((label or mode, points))
    if not curves:
        fail('none of the given files has a layer-wise PE, so there is no '
             'correlation curve to draw (cls/gap models have none).')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    max_block = 0
    for label, points in curves:
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker='o', label=label)
        max_block = max(max_block, max(xs))
    ax.axhline(0, color='grey', lw=0.8)
    ax.set_xticks(range(max_block + 1))
    ax.set_xlabel('block')
    ax.set_ylabel('corr(LN_l(x_l), PE_l)')
    ax.set_title(args.title)
    ax.legend()
    fig.tight_layout()
    out_dir = osp.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f'Wrote {args.out} ({len(curves)} curves)')


if __name__ == '__main__':
    sys.exit(main())
