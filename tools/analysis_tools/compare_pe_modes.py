# Copyright (c) mmpvg contributors. All rights reserved.
"""Compare PE modes over several seeds with the project's own tools.

Trains every config x mode x variant x seed with ``tools/train.py`` (one
after the other; through ``tools/dist_train.sh`` or Slurm when asked), each
in ``OUT/<config-stem>/<mode>[+<variant>]/seed<k>``, skips finished runs,
resumes interrupted ones, then writes to OUT:

- ``comparison.md``: per group of configs that differ only by mode, mean ±
  std over seeds of the final and best validation metric, every seed's
  final value, and the paired difference to the baseline arm with a
  Student-t interval over seeds; the paper's number where metafile.yml has
  one for that config (labelled "paper");
- ``comparison.json``: the same numbers, every run and pairwise
  differences;
- ``comparison.png``: seeds, means and intervals per arm.

Existing result files are only replaced with ``--force``.

Examples:
    # the digits demo, all five modes, three seeds, 12 epochs each
    python tools/analysis_tools/compare_pe_modes.py \
        configs/demo/vit-demo-{cls,gap,lape,pvg,mpvg}_1xb64_demo-digits.py \
        --seeds 0 1 2 --epochs 12 --out-dir work_dirs/compare/demo-digits
    # one config in several modes, plus an ablation arm of each mode
    python tools/analysis_tools/compare_pe_modes.py \
        configs/mpvg/deit-tiny-mpvg_8xb128_in1k.py --modes pvg mpvg \
        --variant default --variant non-hier \
        model.backbone.hierarchical_pe=False \
        --launcher pytorch --gpus 8 --out-dir work_dirs/compare/deit-tiny
"""
import argparse
import os.path as osp
import sys
import time
import warnings

TOOLS_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))
# mmengine imports pkg_resources, which warns on every import.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

from mmpvg.analysis.pe_mode_comparison import (  # noqa: E402
    DEFAULT_METRICS, LAUNCHERS, MODES, ComparisonError, aggregate, execute,
    existing_results, format_markdown, parse_variant, plan_runs,
    read_config, run_state, train_command, write_results)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train configs in several PE modes over several seeds '
        'and compare them (table, JSON, plot).',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('Examples:')[1])
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--out-dir', required=True,
                        help='parent of the runs\' work dirs and of the '
                        'result files')
    parser.add_argument('--modes', nargs='+', metavar='MODE',
                        help='run every config in each of these modes '
                        f'({", ".join(MODES)}) instead of its own pe_mode')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2],
                        help='random seeds (default: 0 1 2)')
    parser.add_argument('--variant', nargs='+', action='append',
                        metavar=('NAME', 'KEY=VALUE'), dest='variants',
                        help='one more arm per mode: NAME and config '
                        'overrides (repeatable; NAME alone: no override)')
    parser.add_argument('--epochs', type=int,
                        help='train this many epochs (epoch-based configs); '
                        'schedules that end with the training end here')
    parser.add_argument('--iters', type=int,
                        help='train this many iterations (iteration-based '
                        'configs)')
    parser.add_argument('--train-subset', type=int, metavar='N',
                        help='train on the first N training samples')
    parser.add_argument('--val-interval', type=int,
                        help='validate every this many epochs / iterations')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='config overrides for every run')
    parser.add_argument('--metric',
                        help='validation metric to compare (default: '
                        + ', '.join(f'{v} for {k}'
                                    for k, v in DEFAULT_METRICS.items())
                        + ')')
    parser.add_argument('--baseline',
                        help='arm the differences are taken to (default: '
                        'the first arm of each group)')
    parser.add_argument('--confidence', type=float, default=0.95,
                        help='confidence of the intervals (default 0.95)')
    parser.add_argument('--test', action='store_true',
                        help='also evaluate each final checkpoint with '
                        'tools/test.py')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='none: tools/train.py; pytorch: '
                        'tools/dist_train.sh; slurm: tools/slurm_train.sh')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes / GPUs per run for pytorch and slurm')
    parser.add_argument('--partition', help='Slurm partition')
    parser.add_argument('--cmd-template',
                        help='shell command per run instead of a launcher, '
                        'with {config} {work_dir} {job_name} {gpus} {args}')
    parser.add_argument('--collect-only', action='store_true',
                        help='train nothing; report the finished runs')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the plan and the commands, run nothing')
    parser.add_argument('--force', action='store_true',
                        help='overwrite existing result files in --out-dir')
    parser.add_argument('--verbose', action='store_true',
                        help='show the trainings\' own output too')
    return parser.parse_args(argv)


def budget_text(args):
    parts = []
    if args.epochs is not None:
        parts.append(f'{args.epochs} epochs')
    if args.iters is not None:
        parts.append(f'{args.iters} iterations')
    if args.train_subset is not None:
        parts.append(f'first {args.train_subset} training samples')
    return ', '.join(parts) or 'the configs\' own schedule'


def main(argv=None):
    args = parse_args(argv)
    try:
        variants = ([parse_variant(v) for v in args.variants]
                    if args.variants else None)
        bad = [o for o in args.cfg_options if '=' not in o]
        if bad:
            raise ComparisonError(
                f'--cfg-options are KEY=VALUE overrides, got {bad}.')
        runs = plan_runs(args.configs, args.out_dir, seeds=args.seeds,
                         modes=args.modes, variants=variants,
                         epochs=args.epochs, iters=args.iters,
                         train_subset=args.train_subset,
                         val_interval=args.val_interval,
                         cfg_options=args.cfg_options)
        scopes = {read_config(c, args.cfg_options).scope
                  for c in dict.fromkeys(args.configs)}
        metric = args.metric
        if metric is None:
            if len(scopes) != 1 or next(iter(scopes)) not in DEFAULT_METRICS:
                raise ComparisonError(
                    f'The configs have scopes {sorted(map(str, scopes))}; '
                    'give --metric (the validation metric to compare).')
            metric = DEFAULT_METRICS[scopes.pop()]
        if args.dry_run:
            for i, run in enumerate(runs, 1):
                cmd = train_command(
                    run, TOOLS_DIR, resume=run_state(run) == 'partial',
                    launcher=args.launcher, gpus=args.gpus,
                    partition=args.partition, template=args.cmd_template)
                print(f'{i}/{len(runs)} [{run_state(run)}] '
                      f'{" ".join(cmd)}')
            return 0
        old = existing_results(args.out_dir)
        if old and not args.force:
            raise ComparisonError(
                f'{", ".join(old)} already exist; pass --force to overwrite '
                'them, or give another --out-dir.')
        if args.collect_only:
            unfinished = [r.work_dir for r in runs
                          if run_state(r) not in ('done', 'finished')]
            if unfinished:
                raise ComparisonError(
                    f'--collect-only: {len(unfinished)} of {len(runs)} runs '
                    f'are not finished: {unfinished[:5]}; run without '
                    '--collect-only to train them.')
        start = time.monotonic()
        print(f'[compare] {len(runs)} runs: {len(args.configs)} config(s) x '
              f'{len(args.modes) if args.modes else 1} mode(s) x '
              f'{len(variants) if variants else 1} variant(s) x '
              f'{len(args.seeds)} seed(s); budget: {budget_text(args)}; '
              f'metric: {metric}')
        records = execute(runs, TOOLS_DIR, metric, launcher=args.launcher,
                          gpus=args.gpus, partition=args.partition,
                          template=args.cmd_template, run_test=args.test,
                          echo=args.verbose)
        summary = aggregate(records, args.baseline, args.confidence)
        wall = time.monotonic() - start
        paths = write_results(
            summary, records, args.out_dir, force=args.force,
            budget=budget_text(args),
            extra=dict(command=[osp.basename(sys.argv[0])] + list(
                argv if argv is not None else sys.argv[1:]),
                       wall_s=wall))
    except ComparisonError as err:
        print(f'compare_pe_modes.py: error: {err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('\n[compare] interrupted; run the same command again to '
              'continue (finished runs are kept, the interrupted one '
              'resumes from its last checkpoint).', file=sys.stderr)
        return 130
    print()
    print(format_markdown(summary, budget_text(args)))
    print(f'[compare] wall time {wall:.0f} s; wrote {", ".join(paths)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
