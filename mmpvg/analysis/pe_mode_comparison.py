# Copyright (c) mmpvg contributors. All rights reserved.
"""Multi-seed comparison of PE modes: plan, run, collect, aggregate, report.

The comparison trains every (config, mode, variant, seed) through the
project's own ``tools/train.py`` (optionally evaluates the final checkpoint
with ``tools/test.py``), each in its own work dir
``<out>/<config-stem>/<mode>[+<variant>]/seed<k>``, then reads the final and
best validation metric from mmengine's ``scalars.json`` (or the text log)
and reports, per group of configs that differ only by mode, mean / std / n
per arm and the paired difference to a baseline arm with a t-based
confidence interval over the seeds the two arms share.

A run is *done* when its work dir holds :data:`DONE_MARKER` (written by
this module once the run's final checkpoint exists), *finished* when the
final checkpoint exists without the marker, *partial* when mmengine's
``last_checkpoint`` exists (it is resumed with ``--resume``) and *new*
otherwise. Rerunning the same command therefore continues where an
interrupted comparison stopped.

Nothing heavy is imported at module import time (scipy, matplotlib and
mmengine's Config are imported where used).
"""
import glob
import json
import math
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

MODES = ('cls', 'gap', 'lape', 'pvg', 'mpvg')
# Written into a run's work dir: what the run is (checked on every rerun)
# and that it finished (with its metrics).
SPEC_FILE = 'compare_run.json'
DONE_MARKER = 'compare_done.json'
RUN_LOG = 'compare_train.log'
RESULT_FILES = ('comparison.md', 'comparison.json', 'comparison.png')
# The metric each package's configs validate with, unless --metric says.
DEFAULT_METRICS = {
    'mmpretrain': 'accuracy/top1',
    'mmdet': 'coco/bbox_mAP',
    'mmseg': 'mIoU',
}
# Our metric -> (metafile metric name, factor from the metafile's units
# to ours): mmdet reports AP as a fraction, the paper in percent.
PAPER_METRICS = {
    'accuracy/top1': ('Top 1 Accuracy', 1.0),
    'coco/bbox_mAP': ('box AP', 0.01),
    'coco/segm_mAP': ('mask AP', 0.01),
    'mIoU': ('mIoU', 1.0),
}
PAPER_SOURCE = 'reported by the paper'
LAUNCHERS = ('none', 'pytorch', 'slurm')


class ComparisonError(RuntimeError):
    """A problem with the comparison's inputs or runs, with a message that
    says what was wrong and what is accepted."""


# ----------------------------------------------------------------------------
# configs and planning
# ----------------------------------------------------------------------------
@dataclass
class ConfigInfo:
    """What the planner needs from a config file."""
    path: str
    stem: str
    scope: str
    pe_mode: Optional[str]
    by_epoch: bool
    length: int
    schedulers: list
    train_dataset_wrapped: bool


def parse_options(options: Sequence[str]) -> dict:
    """``['a.b=1', 'c=[1,2]']`` -> the dict ``--cfg-options`` gives
    (mmengine's own parsing of the values)."""
    import argparse

    from mmengine.config import DictAction
    namespace = argparse.Namespace(options={})
    if options:
        DictAction(option_strings=[], dest='options')(
            None, namespace, list(options))
    return namespace.options


def read_config(path: str, cfg_options: Sequence[str] = ()) -> ConfigInfo:
    """Read the parts of a config the comparison changes or reports, after
    the ``key=value`` overrides every run gets.

    Raises:
        ComparisonError: If the file is missing or has no epoch- or
            iteration-based ``train_cfg``.
    """
    import warnings

    from mmengine.config import Config
    if not osp.isfile(path):
        raise ComparisonError(f'Config file {path!r} does not exist.')
    with warnings.catch_warnings():
        # mmengine's import of pkg_resources warns on every read.
        warnings.simplefilter('ignore', UserWarning)
        # Custom imports are for building models; reading needs none (the
        # detection / segmentation demos' imports would load mmdet / mmseg).
        cfg = Config.fromfile(path, import_custom_modules=False)
    if cfg_options:
        cfg.merge_from_dict(parse_options(cfg_options))
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_epochs' in train_cfg:
        by_epoch, length = True, int(train_cfg['max_epochs'])
    elif 'max_iters' in train_cfg:
        by_epoch, length = False, int(train_cfg['max_iters'])
    else:
        raise ComparisonError(
            f'{path}: train_cfg has neither max_epochs nor max_iters, so it '
            'cannot be trained or given a budget; the comparison accepts '
            'configs with an epoch- or iteration-based train_cfg.')
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    return ConfigInfo(
        path=path,
        stem=osp.splitext(osp.basename(path))[0],
        scope=cfg.get('default_scope'),
        pe_mode=backbone.get('pe_mode'),
        by_epoch=by_epoch,
        length=length,
        schedulers=[dict(s) for s in schedulers],
        train_dataset_wrapped='dataset' in dataset)


def split_name(stem: str, mode: Optional[str]):
    """Split a config name into the group it shares with the other modes
    and the part that names this arm.

    The project names put the mode right after the backbone, then any
    ablation, in the first ``_`` field (configs/README.md), so
    ``deit-tiny-mpvg-non-hierarchical_8xb128_in1k`` with mode ``mpvg`` is
    group ``deit-tiny_8xb128_in1k``, arm ``mpvg-non-hierarchical``.

    Returns:
        tuple[str, str, str]: The group, the arm suffix after the mode (''
        if none) and the backbone prefix before it. Without the mode in the
        name, the group is the whole stem and the suffix ''.
    """
    first, _, rest = stem.partition('_')
    tokens = first.split('-')
    if mode is None or mode not in tokens:
        return stem, '', first
    i = len(tokens) - 1 - tokens[::-1].index(mode)
    prefix = '-'.join(tokens[:i])
    suffix = '-'.join(tokens[i + 1:])
    group = prefix + ('_' + rest if rest else '')
    return group, suffix, prefix


def _scheduler_options(info: ConfigInfo, new_length: int) -> List[str]:
    """Move every scheduler boundary at the old end of training to the new
    one, so that the decay still ends with the training.

    Raises:
        ComparisonError: If a scheduler that ends before the old end (a
            warm-up) or starts after 0 does not fit in the new length.
    """
    opts, needs = [], []
    unit = 'epoch' if info.by_epoch else 'iteration'
    for i, sched in enumerate(info.schedulers):
        # A scheduler counted in other units than the loop (a warm-up in
        # iterations in an epoch-based config) is left as it is.
        if sched.get('by_epoch', True) != info.by_epoch:
            continue
        begin = sched.get('begin', 0)
        end = sched.get('end')
        name = f'param_scheduler[{i}] ({sched.get("type")}, {unit}s ' \
            f'{begin}-{end if end is not None else "end"})'
        if end is None or end >= info.length:
            if begin > 0:
                needs.append((begin + 1, name))
            if end is not None:
                opts.append(f'param_scheduler.{i}.end={new_length}')
            if 'T_max' in sched:
                opts.append(f'param_scheduler.{i}.T_max={new_length - begin}')
        else:
            needs.append((end, name))
    need = max([n for n, _ in needs], default=1)
    if new_length < need:
        raise ComparisonError(
            f'{info.path}: a budget of {new_length} {unit}s is too short '
            f'for its schedule ({", ".join(n for _, n in needs)}), which '
            f'needs at least {need}; give a budget of {need} or more, or '
            'move those boundaries with --cfg-options (e.g. '
            'param_scheduler.0.end=1 param_scheduler.1.begin=1).')
    return opts


def budget_options(info: ConfigInfo, epochs: Optional[int] = None,
                   iters: Optional[int] = None,
                   train_subset: Optional[int] = None,
                   val_interval: Optional[int] = None) -> List[str]:
    """``--cfg-options`` entries for a shorter (or longer) training.

    Args:
        info: The config.
        epochs: New ``train_cfg.max_epochs`` (epoch-based configs).
        iters: New ``train_cfg.max_iters`` (iteration-based configs).
        train_subset: Train on the first N samples
            (``train_dataloader.dataset.indices``, mmengine's BaseDataset).
        val_interval: New ``train_cfg.val_interval``.

    Returns:
        list[str]: ``key=value`` strings.

    Raises:
        ComparisonError: For a budget in the wrong unit, a non-positive
            value, or a scheduler that would not fit in the budget.
    """
    opts = []
    if epochs is not None and iters is not None:
        raise ComparisonError('Give --epochs or --iters, not both.')
    new_length = epochs if epochs is not None else iters
    if new_length is not None:
        if new_length < 1:
            raise ComparisonError(
                f'The budget must be at least 1, got {new_length}.')
        if epochs is not None and not info.by_epoch:
            raise ComparisonError(
                f'{info.path} trains by iterations (train_cfg.max_iters='
                f'{info.length}); give --iters, not --epochs.')
        if iters is not None and info.by_epoch:
            raise ComparisonError(
                f'{info.path} trains by epochs (train_cfg.max_epochs='
                f'{info.length}); give --epochs, not --iters.')
        key = 'max_epochs' if info.by_epoch else 'max_iters'
        opts.append(f'train_cfg.{key}={new_length}')
        opts += _scheduler_options(info, new_length)
    if train_subset is not None:
        if train_subset < 1:
            raise ComparisonError(
                f'--train-subset must be at least 1, got {train_subset}.')
        nested = '.dataset' if info.train_dataset_wrapped else ''
        opts.append(f'train_dataloader.dataset{nested}.indices={train_subset}')
    if val_interval is not None:
        if val_interval < 1:
            raise ComparisonError(
                f'--val-interval must be at least 1, got {val_interval}.')
        opts.append(f'train_cfg.val_interval={val_interval}')
    return opts


@dataclass
class Run:
    """One training of the comparison."""
    config: str
    group: str
    arm: str
    mode: str
    variant: Optional[str]
    seed: int
    work_dir: str
    cfg_options: List[str]
    final_checkpoint: str
    by_epoch: bool
    length: int
    paper_config: Optional[str] = None
    job_name: str = ''

    def spec(self) -> dict:
        """What identifies the run's training (compared on reruns)."""
        return dict(config=self.config, mode=self.mode,
                    variant=self.variant, seed=self.seed,
                    cfg_options=list(self.cfg_options))

    def describe(self) -> str:
        variant = f' variant={self.variant}' if self.variant else ''
        return (f'{osp.basename(self.config)} mode={self.mode}{variant} '
                f'seed={self.seed}')


def parse_variant(spec: Sequence[str]):
    """``NAME [KEY=VALUE ...]`` -> (name, options).

    Raises:
        ComparisonError: If the name is not a plain word or an option has
            no ``=``.
    """
    if not spec:
        raise ComparisonError(
            '--variant needs a NAME, then KEY=VALUE options.')
    name, options = spec[0], list(spec[1:])
    if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_.-]*', name):
        raise ComparisonError(
            f'--variant name {name!r} must be letters, digits, ".", "_" or '
            '"-" (it names a folder), e.g. --variant non-hier '
            'model.backbone.hierarchical_pe=False.')
    bad = [o for o in options if '=' not in o]
    if bad:
        raise ComparisonError(
            f'--variant {name}: options are KEY=VALUE config overrides, got '
            f'{bad}.')
    return name, options


def plan_runs(configs: Sequence[str], out_dir: str,
              seeds: Sequence[int] = (0, 1, 2),
              modes: Optional[Sequence[str]] = None,
              variants: Optional[Sequence] = None,
              epochs: Optional[int] = None, iters: Optional[int] = None,
              train_subset: Optional[int] = None,
              val_interval: Optional[int] = None,
              cfg_options: Sequence[str] = ()) -> List[Run]:
    """Every run of the comparison, in the order they are trained.

    Args:
        configs: Config files; each is run in its own ``pe_mode`` unless
            ``modes`` is given.
        out_dir: Parent of the runs' work dirs.
        seeds: ``randomness.seed`` of the runs.
        modes: Override ``model.backbone.pe_mode`` of every config with
            each of these.
        variants: ``(name, [key=value, ...])`` pairs, each one more arm per
            mode (e.g. an ablation switch); default: none.
        epochs, iters, train_subset, val_interval: The budget
            (:func:`budget_options`).
        cfg_options: ``key=value`` overrides for every run.

    Returns:
        list[Run]: Runs ordered seed-major (all arms of seed 0 first), so
        that an interrupted comparison already has paired seeds.

    Raises:
        ComparisonError: For unknown modes, repeated seeds, configs without
            a mode when none is given, or a budget that does not fit.
    """
    if not configs:
        raise ComparisonError('Give at least one config.')
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ComparisonError(
            f'--seeds must be one or more distinct integers, got {seeds}.')
    if modes is not None:
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes or len(set(modes)) != len(modes):
            raise ComparisonError(
                f'--modes must be distinct modes out of {list(MODES)}, got '
                f'{list(modes)}.')
    variants = list(variants) if variants else [(None, [])]
    names = [name for name, _ in variants]
    if len(set(names)) != len(names):
        raise ComparisonError(f'--variant names must differ, got {names}.')
    touches_model = any(o.startswith('model.') for o in cfg_options)

    arms = []  # (info, mode, variant, variant options, budget options)
    for path in configs:
        info = read_config(path, cfg_options)
        budget = budget_options(info, epochs, iters, train_subset,
                                val_interval)
        if modes is None and info.pe_mode is None:
            raise ComparisonError(
                f'{path} sets no model.backbone.pe_mode; give --modes to say '
                'which modes to run it in.')
        for mode in (modes or [info.pe_mode]):
            for name, options in variants:
                arms.append((info, mode, name, options, budget))

    runs, seen = [], {}
    for seed in seeds:
        for info, mode, name, options, budget in arms:
            group, suffix, prefix = split_name(info.stem, info.pe_mode)
            arm = mode + (f'-{suffix}' if suffix else '')
            if name:
                arm += f'+{name}'
            leaf = mode + (f'+{name}' if name else '')
            work_dir = osp.join(out_dir, info.stem, leaf, f'seed{seed}')
            if work_dir in seen:
                raise ComparisonError(
                    f'{info.path} with mode {mode} is planned twice (give '
                    'each config once).')
            seen[work_dir] = True
            opts = list(budget) + [f'randomness.seed={seed}']
            if mode != info.pe_mode:
                opts.append(f'model.backbone.pe_mode={mode}')
            opts += list(options) + list(cfg_options)
            final = ('epoch_' if info.by_epoch else 'iter_') + str(
                _planned_length(info, epochs, iters)) + '.pth'
            paper = None
            if not options and not touches_model:
                paper = _sibling_config(info, prefix, mode, suffix)
            runs.append(Run(
                config=info.path, group=group, arm=arm, mode=mode,
                variant=name, seed=seed, work_dir=work_dir,
                cfg_options=opts, final_checkpoint=final,
                by_epoch=info.by_epoch,
                length=_planned_length(info, epochs, iters),
                paper_config=paper,
                job_name=f'{info.stem}-{leaf}-seed{seed}'))
    return runs


def _planned_length(info, epochs, iters):
    new = epochs if info.by_epoch else iters
    return info.length if new is None else new


def _sibling_config(info: ConfigInfo, prefix: str, mode: str, suffix: str):
    """The config file of the same recipe in ``mode`` (the paper's number
    belongs to that file's name), or None if the name has no mode."""
    if info.pe_mode is None or mode == info.pe_mode:
        return info.path
    first_rest = info.stem.partition('_')[2]
    name = '-'.join(p for p in (prefix, mode, suffix) if p)
    name += ('_' + first_rest if first_rest else '')
    if split_name(info.stem, info.pe_mode)[0] == info.stem:
        return None
    return osp.join(osp.dirname(info.path), name + '.py')


# ----------------------------------------------------------------------------
# paper numbers (from the configs' metafile.yml)
# ----------------------------------------------------------------------------
def paper_result(config_path: Optional[str], metric: str) -> Optional[float]:
    """The paper's number for a config, in ``metric``'s units, read from the
    ``metafile.yml`` beside the config or one folder up; None when the
    metafile reports none from the paper (demo configs report our own
    measurements, which are not paper numbers)."""
    if config_path is None or metric not in PAPER_METRICS:
        return None
    paper_name, factor = PAPER_METRICS[metric]
    stem = osp.splitext(osp.basename(config_path))[0]
    folder = osp.dirname(osp.abspath(config_path))
    for meta in (osp.join(folder, 'metafile.yml'),
                 osp.join(osp.dirname(folder), 'metafile.yml')):
        for model in _read_metafile(meta):
            if model.get('Name') != stem:
                continue
            source = (model.get('Metadata') or {}).get('Results Source', '')
            if not str(source).startswith(PAPER_SOURCE):
                return None
            for result in model.get('Results') or []:
                value = (result.get('Metrics') or {}).get(paper_name)
                if value is not None:
                    return round(float(value) * factor, 6)
            return None
    return None


_METAFILES: Dict[str, list] = {}


def _read_metafile(path: str) -> list:
    if path not in _METAFILES:
        models = []
        if osp.isfile(path):
            import yaml
            with open(path) as f:
                models = (yaml.safe_load(f) or {}).get('Models') or []
        _METAFILES[path] = models
    return _METAFILES[path]


# ----------------------------------------------------------------------------
# run state and commands
# ----------------------------------------------------------------------------
def run_state(run: Run) -> str:
    """``'done'``, ``'finished'``, ``'partial'`` or ``'new'`` (module doc).

    Raises:
        ComparisonError: If the work dir was written by a run with other
            settings (another config, mode, seed or budget).
    """
    spec_path = osp.join(run.work_dir, SPEC_FILE)
    if osp.isfile(spec_path):
        with open(spec_path) as f:
            old = json.load(f)
        if old != run.spec():
            raise ComparisonError(
                f'{run.work_dir} holds a run with other settings '
                f'({old}), not ({run.spec()}); give another --out-dir for '
                'this comparison (a work dir is never overwritten).')
    if osp.isfile(osp.join(run.work_dir, DONE_MARKER)):
        return 'done'
    if osp.isfile(osp.join(run.work_dir, run.final_checkpoint)):
        return 'finished'
    if osp.isfile(osp.join(run.work_dir, 'last_checkpoint')):
        return 'partial'
    return 'new'


def train_command(run: Run, tools_dir: str, resume: bool = False,
                  launcher: str = 'none', gpus: int = 1,
                  partition: Optional[str] = None,
                  template: Optional[str] = None,
                  python: str = sys.executable) -> List[str]:
    """The command that trains ``run`` with the project's tools.

    Args:
        run: The run.
        tools_dir: The project's ``tools/`` folder.
        resume: Add ``--resume`` (from the work dir's last checkpoint).
        launcher: ``'none'`` (``python tools/train.py``), ``'pytorch'``
            (``tools/dist_train.sh`` with ``gpus`` processes) or ``'slurm'``
            (``tools/slurm_train.sh`` on ``partition`` with ``gpus`` GPUs).
        template: Instead, a shell command with ``{config}``,
            ``{work_dir}``, ``{job_name}``, ``{gpus}`` and ``{args}`` (the
            train.py options: ``--cfg-options ...`` and ``--resume``), run
            with ``bash -c``.
        python: The interpreter for ``tools/train.py``.

    Returns:
        list[str]: The argv.

    Raises:
        ComparisonError: For an unknown launcher or a Slurm launch without
            a partition.
    """
    args = ['--cfg-options'] + list(run.cfg_options)
    if resume:
        args.append('--resume')
    if template is not None:
        cmd = template.format(
            config=shlex.quote(run.config),
            work_dir=shlex.quote(run.work_dir),
            job_name=shlex.quote(run.job_name), gpus=gpus,
            args=' '.join(shlex.quote(a) for a in args))
        return ['bash', '-c', cmd]
    if launcher == 'none':
        return [python, osp.join(tools_dir, 'train.py'), run.config,
                '--work-dir', run.work_dir] + args
    if launcher == 'pytorch':
        return ['bash', osp.join(tools_dir, 'dist_train.sh'), run.config,
                str(gpus), '--work-dir', run.work_dir] + args
    if launcher == 'slurm':
        if not partition:
            raise ComparisonError(
                '--launcher slurm needs --partition (the Slurm partition '
                'tools/slurm_train.sh submits to).')
        return ['env', f'GPUS={gpus}', f'GPUS_PER_NODE={min(gpus, 8)}',
                'bash', osp.join(tools_dir, 'slurm_train.sh'), partition,
                run.job_name, run.config, run.work_dir] + args
    raise ComparisonError(
        f'--launcher must be one of {list(LAUNCHERS)}, got {launcher!r}.')


def test_command(run: Run, tools_dir: str,
                 python: str = sys.executable) -> List[str]:
    """``tools/test.py`` on the run's final checkpoint (into
    ``<work_dir>/test``)."""
    return [python, osp.join(tools_dir, 'test.py'), run.config,
            osp.join(run.work_dir, run.final_checkpoint), '--work-dir',
            osp.join(run.work_dir, 'test'), '--cfg-options'
            ] + list(run.cfg_options)


# ----------------------------------------------------------------------------
# metrics of a work dir
# ----------------------------------------------------------------------------
_TRAIN_EPOCH = re.compile(r'Epoch\(train\)\s*\[\s*(\d+)\]\[\s*(\d+)/(\d+)\]')
_TRAIN_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')
_VAL_EPOCH = re.compile(r'Epoch\(val\)\s*\[\s*(\d+)\]\[\s*\d+/\d+\]')
_VAL_ITER = re.compile(r'Iter\(val\)\s*\[\s*\d+/\d+\]')


def _number_after(metric: str, line: str) -> Optional[float]:
    found = re.search(re.escape(metric) + r':\s*(-?[0-9.]+(?:e[-+]?\d+)?)',
                      line)
    return float(found.group(1)) if found else None


def validation_history(work_dir: str, metric: str) -> Dict[int, float]:
    """``{step: value}`` of every validation of ``metric`` in a work dir:
    epochs for epoch-based runs, iterations otherwise.

    Reads mmengine's ``<timestamp>/vis_data/scalars.json`` of every attempt
    (a resumed run validates again from its checkpoint on: the later
    attempt wins); without any, the ``<timestamp>/<timestamp>.log`` files.
    """
    history: Dict[int, float] = {}
    attempts = sorted(d for d in glob.glob(osp.join(work_dir, '*'))
                      if osp.isdir(d) and re.fullmatch(
                          r'\d{8}_\d{6}', osp.basename(d)))
    scalars = [osp.join(d, 'vis_data', 'scalars.json') for d in attempts]
    scalars = [s for s in scalars if osp.isfile(s)]
    for path in scalars:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                entry = json.loads(line)
                if metric in entry and 'step' in entry:
                    history[int(entry['step'])] = float(entry[metric])
    if scalars:
        return history
    for attempt in attempts:
        log = osp.join(attempt, osp.basename(attempt) + '.log')
        if not osp.isfile(log):
            continue
        last_iter = 0
        with open(log) as f:
            for line in f:
                train = _TRAIN_ITER.search(line)
                if train:
                    last_iter = int(train.group(1))
                value = _number_after(metric, line)
                if value is None:
                    continue
                val = _VAL_EPOCH.search(line)
                if val:
                    history[int(val.group(1))] = value
                elif _VAL_ITER.search(line):
                    history[last_iter] = value
    return history


def collect_metrics(work_dir: str, metric: str) -> dict:
    """Final and best validation value of ``metric`` in a work dir.

    Returns:
        dict: ``final``, ``final_step``, ``best``, ``best_step`` and
        ``history`` (``[[step, value], ...]``).

    Raises:
        ComparisonError: If the work dir has no validation of ``metric``
            (with the metrics it does have).
    """
    history = validation_history(work_dir, metric)
    if not history:
        raise ComparisonError(
            f'{work_dir} has no validation result for {metric!r} (neither '
            'in */vis_data/scalars.json nor in the logs); metrics found: '
            f'{_metrics_found(work_dir) or "none"}. Give --metric with one '
            'of them.')
    steps = sorted(history)
    best_step = max(steps, key=lambda s: (history[s], -s))
    return dict(final=history[steps[-1]], final_step=steps[-1],
                best=history[best_step], best_step=best_step,
                history=[[s, history[s]] for s in steps])


def _metrics_found(work_dir: str) -> List[str]:
    keys = set()
    skip = {'step', 'epoch', 'iter', 'lr', 'base_lr', 'time', 'data_time',
            'memory'}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json')):
        with open(path) as f:
            for line in f:
                if line.strip():
                    entry = json.loads(line)
                    if not any(k.startswith('loss') for k in entry):
                        keys.update(k for k in entry if k not in skip)
    return sorted(keys)


def test_metric(test_dir: str, metric: str) -> float:
    """``metric`` from the JSON ``tools/test.py`` wrote into ``test_dir``
    (the newest attempt).

    Raises:
        ComparisonError: If there is none.
    """
    found = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    for path in reversed(found):
        with open(path) as f:
            result = json.load(f)
        if metric in result:
            return float(result[metric])
    raise ComparisonError(
        f'tools/test.py wrote no {metric!r} under {test_dir}; give --metric '
        'with a metric of the config\'s test_evaluator.')


# ----------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


class Progress:
    """Progress lines for a person: which run, where in it, time left."""

    def __init__(self, total_to_train: int, printer: Callable = print):
        self.total = total_to_train
        self.printer = printer
        self.start = time.monotonic()
        self.durations: List[float] = []
        self.index = 0
        self.run_start = self.start
        self.fraction = 0.0
        self.label = ''

    def begin(self, run: Run, state: str):
        self.index += 1
        self.label = f'{run.arm} seed={run.seed}'
        self.run_start = time.monotonic()
        self.fraction = 0.0
        how = ' (resuming)' if state == 'partial' else ''
        self.printer(f'[compare] run {self.index}/{self.total}: '
                     f'{run.describe()}{how} -> {run.work_dir}')

    def left(self) -> Optional[float]:
        """Estimated seconds left for every run still to train."""
        now = time.monotonic()
        elapsed = now - self.run_start
        if self.durations:
            per_run = sum(self.durations) / len(self.durations)
        elif self.fraction > 0.02:
            per_run = elapsed / self.fraction
        else:
            return None
        current = (max(per_run * (1 - self.fraction), 0)
                   if self.fraction > 0.02 or self.durations else per_run)
        return current + per_run * (self.total - self.index)

    def update(self, message: str, fraction: Optional[float] = None):
        if fraction is not None:
            self.fraction = fraction
        left = self.left()
        eta = f', ~{_clock(left)} left' if left is not None else ''
        now = time.monotonic()
        self.printer(
            f'[compare] run {self.index}/{self.total} {self.label}: '
            f'{message} (run {_clock(now - self.run_start)}, '
            f'total {_clock(now - self.start)}{eta})')

    def end(self):
        self.durations.append(time.monotonic() - self.run_start)


def _stream(cmd: List[str], log_path: str, env: dict, on_line: Callable,
            echo: bool) -> int:
    """Run ``cmd``, appending its output to ``log_path`` and handing each
    line to ``on_line``; returns the exit status."""
    with open(log_path, 'a') as log:
        log.write(f'\n$ {" ".join(shlex.quote(c) for c in cmd)}\n')
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                bufsize=1, env=env)
        try:
            for line in proc.stdout:
                log.write(line)
                if echo:
                    sys.stdout.write(line)
                on_line(line)
            return proc.wait()
        except BaseException:
            # Ctrl-C or an error here: stop the training too; its last
            # checkpoint is kept, and the next run of the comparison resumes.
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


def _tail(path: str, lines: int = 25) -> str:
    with open(path) as f:
        return ''.join(f.readlines()[-lines:])


def _line_watcher(run: Run, progress: Progress, metric: str):
    """Turn mmengine's log lines into progress lines: one per new epoch
    (every tenth of the run for iteration-based configs) and one per
    validation."""
    state = {'mark': None}

    def on_line(line):
        epoch = _TRAIN_EPOCH.search(line)
        if epoch and run.by_epoch:
            e, i, n = (int(g) for g in epoch.groups())
            if state['mark'] != e:
                state['mark'] = e
                progress.update(f'epoch {e}/{run.length}',
                                ((e - 1) + i / n) / run.length)
            else:
                progress.fraction = ((e - 1) + i / n) / run.length
            return
        it = _TRAIN_ITER.search(line)
        if it and not run.by_epoch:
            i = int(it.group(1))
            tenth = 10 * i // max(run.length, 1)
            progress.fraction = i / run.length
            if state['mark'] != tenth:
                state['mark'] = tenth
                progress.update(f'iteration {i}/{run.length}')
            return
        if _VAL_EPOCH.search(line) or _VAL_ITER.search(line):
            value = _number_after(metric, line)
            if value is not None:
                progress.update(f'validation {metric} = {value:g}')

    return on_line


def execute(runs: Sequence[Run], tools_dir: str, metric: str,
            launcher: str = 'none', gpus: int = 1,
            partition: Optional[str] = None,
            template: Optional[str] = None, run_test: bool = False,
            echo: bool = False, printer: Callable = print,
            python: str = sys.executable) -> List[dict]:
    """Train (or resume, or skip) every run, one after the other, and
    collect its metrics.

    Returns:
        list[dict]: One record per run: the run's fields plus ``final``,
        ``best`` (and their steps), ``history``, ``test`` (with
        ``run_test``), ``state`` (as found before this call), ``wall_s``
        (of the attempt that finished it) and ``resumed``.

    Raises:
        ComparisonError: If a run fails (with its log's tail; rerunning the
            command resumes it), or a work dir belongs to another run.
    """
    states = [run_state(run) for run in runs]  # checks every dir first
    to_train = sum(s in ('new', 'partial') for s in states)
    progress = Progress(to_train, printer)
    repo = osp.dirname(osp.abspath(tools_dir))
    env = dict(os.environ, PYTHON=python)
    env['PYTHONPATH'] = repo + (
        os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    skipped = len(runs) - to_train
    if skipped:
        printer(f'[compare] {skipped} of {len(runs)} runs already finished '
                f'(kept); {to_train} to train.')
    records = []
    for run, state in zip(runs, states):
        os.makedirs(run.work_dir, exist_ok=True)
        spec_path = osp.join(run.work_dir, SPEC_FILE)
        if not osp.isfile(spec_path):
            _write_json(spec_path, run.spec())
        marker = osp.join(run.work_dir, DONE_MARKER)
        if state == 'done':
            with open(marker) as f:
                record = json.load(f)
            if record.get('metric') != metric:  # another metric this time
                record = {k: v for k, v in record.items() if k != 'test'}
                record.update(metric=metric,
                              **collect_metrics(run.work_dir, metric))
            records.append(dict(record, state=state))
            continue
        wall, resumed = None, state == 'partial'
        if state in ('new', 'partial'):
            progress.begin(run, state)
            cmd = train_command(run, tools_dir, resume=resumed,
                                launcher=launcher, gpus=gpus,
                                partition=partition, template=template,
                                python=python)
            log_path = osp.join(run.work_dir, RUN_LOG)
            start = time.monotonic()
            rc = _stream(cmd, log_path, env,
                         _line_watcher(run, progress, metric), echo)
            if rc != 0 or not osp.isfile(
                    osp.join(run.work_dir, run.final_checkpoint)):
                why = (f'exited with status {rc}' if rc != 0 else
                       f'ended without writing {run.final_checkpoint}')
                raise ComparisonError(
                    f'Run {progress.index}/{to_train} ({run.describe()}) '
                    f'{why}; its output is in {log_path}. Rerunning the '
                    'same command resumes it from its last checkpoint. Last '
                    f'lines:\n{_tail(log_path)}')
            wall = time.monotonic() - start
            progress.end()
        record = dict(asdict(run), metric=metric, wall_s=wall,
                      resumed=resumed, **collect_metrics(run.work_dir, metric))
        _write_json(marker, record)
        records.append(dict(record, state=state))
        done = (f'final {metric} = {record["final"]:g}, best = '
                f'{record["best"]:g}')
        if state == 'finished':  # trained earlier, the marker not written
            printer(f'[compare] {run.describe()}: finished earlier, {done}')
        else:
            progress.update(f'done: {done}', fraction=1.0)
    if run_test:
        for run, record in zip(runs, records):
            if 'test' in record:
                continue
            log_path = osp.join(run.work_dir, RUN_LOG)
            printer(f'[compare] tools/test.py: {run.describe()}')
            rc = _stream(test_command(run, tools_dir, python), log_path, env,
                         lambda line: None, echo)
            if rc != 0:
                raise ComparisonError(
                    f'tools/test.py on {run.work_dir}/{run.final_checkpoint} '
                    f'exited with status {rc}; see {log_path}. Last lines:\n'
                    f'{_tail(log_path)}')
            record['test'] = test_metric(osp.join(run.work_dir, 'test'),
                                         metric)
            saved = {k: v for k, v in record.items() if k != 'state'}
            _write_json(osp.join(run.work_dir, DONE_MARKER), saved)
    return records


def _write_json(path: str, obj):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)  # never a half-written marker


# ----------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> dict:
    """``n``, ``mean`` and the sample standard deviation ``std`` (n - 1;
    None for one value)."""
    n = len(values)
    if n == 0:
        return dict(n=0, mean=None, std=None)
    mean = sum(values) / n
    std = (math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))
           if n > 1 else None)
    return dict(n=n, mean=mean, std=std)


def t_interval(values: Sequence[float], confidence: float = 0.95):
    """Student-t confidence interval of the mean, ``(low, high)``; None
    with fewer than two values."""
    from scipy import stats
    summary = mean_std(values)
    if summary['n'] < 2:
        return None
    half = stats.t.ppf((1 + confidence) / 2, summary['n'] - 1) * (
        summary['std'] / math.sqrt(summary['n']))
    return summary['mean'] - half, summary['mean'] + half


def paired_difference(values: Dict[int, float], baseline: Dict[int, float],
                      confidence: float = 0.95) -> dict:
    """Mean over shared seeds of ``values[s] - baseline[s]``, its standard
    deviation, t interval and two-sided paired t-test p-value.

    Returns:
        dict: ``seeds``, ``n``, ``mean``, ``std``, ``ci`` (``[low, high]``
        or None for n < 2), ``p_value`` (None for n < 2 or when every
        difference is equal) and ``excludes_zero``.
    """
    from scipy import stats
    seeds = sorted(set(values) & set(baseline))
    diffs = [values[s] - baseline[s] for s in seeds]
    summary = mean_std(diffs)
    ci = t_interval(diffs, confidence)
    p_value = None
    if summary['n'] > 1 and summary['std'] > 0:
        t = summary['mean'] / (summary['std'] / math.sqrt(summary['n']))
        p_value = float(2 * stats.t.sf(abs(t), summary['n'] - 1))
    return dict(seeds=seeds, n=summary['n'], mean=summary['mean'],
                std=summary['std'], ci=list(ci) if ci else None,
                p_value=p_value,
                excludes_zero=bool(ci and (ci[0] > 0 or ci[1] < 0)))


def aggregate(records: Sequence[dict], baseline: Optional[str] = None,
              confidence: float = 0.95) -> dict:
    """Group the run records and compare each arm with the baseline arm.

    Args:
        records: From :func:`execute` (``group``, ``arm``, ``seed``,
            ``final``, ``best``, optional ``test``, ``paper_config``,
            ``metric``, ``config``).
        baseline: The arm the differences are taken to (a mode such as
            ``'cls'``, or ``mode+variant``); default: each group's first
            arm.
        confidence: Of the intervals.

    Returns:
        dict: ``metric``, ``confidence``, ``groups`` (each with ``group``,
        ``baseline``, ``arms`` and ``pairwise``).

    Raises:
        ComparisonError: If the baseline arm is not in a group.
    """
    if not 0 < confidence < 1:
        raise ComparisonError(
            f'--confidence must be between 0 and 1, got {confidence}.')
    groups: Dict[str, Dict[str, List[dict]]] = {}
    for rec in records:
        groups.setdefault(rec['group'], {}).setdefault(rec['arm'],
                                                       []).append(rec)
    metric = records[0]['metric'] if records else None
    out = []
    for group, arms in groups.items():
        base = baseline if baseline is not None else next(iter(arms))
        if base not in arms:
            raise ComparisonError(
                f'--baseline {base!r} is not an arm of {group}; its arms are '
                f'{list(arms)}.')
        per_arm = {}
        for arm, recs in arms.items():
            recs = sorted(recs, key=lambda r: r['seed'])
            kinds = ['final', 'best'] + (
                ['test'] if all('test' in r for r in recs) else [])
            entry = dict(arm=arm, mode=recs[0]['mode'],
                         variant=recs[0].get('variant'),
                         config=recs[0]['config'],
                         seeds=[r['seed'] for r in recs])
            for kind in kinds:
                vals = [r[kind] for r in recs]
                ci = t_interval(vals, confidence)
                entry[kind] = dict(mean_std(vals), values=vals,
                                   ci=list(ci) if ci else None)
            entry['paper'] = paper_result(recs[0].get('paper_config'),
                                          recs[0]['metric'])
            per_arm[arm] = entry

        def by_seed(arm, kind):
            return {r['seed']: r[kind] for r in arms[arm]}

        for arm, entry in per_arm.items():
            entry['diff_to_baseline'] = None if arm == base else {
                kind: paired_difference(by_seed(arm, kind),
                                        by_seed(base, kind), confidence)
                for kind in ('final', 'best')
            }
        names = list(arms)
        # each later arm minus each earlier one
        pairwise = [
            dict(arm=b, other=a, final=paired_difference(
                by_seed(b, 'final'), by_seed(a, 'final'), confidence))
            for i, a in enumerate(names) for b in names[i + 1:]
        ]
        out.append(dict(group=group, baseline=base,
                        arms=list(per_arm.values()), pairwise=pairwise))
    return dict(metric=metric, confidence=confidence, groups=out)


# ----------------------------------------------------------------------------
# reports
# ----------------------------------------------------------------------------
def _fmt(value, digits=2):
    return '-' if value is None else f'{value:.{digits}f}'


def _pm(stats_: dict, digits=2):
    if stats_['std'] is None:
        return _fmt(stats_['mean'], digits)
    return f'{stats_["mean"]:.{digits}f} ± {stats_["std"]:.{digits}f}'


def format_markdown(summary: dict, budget: str = '', digits: int = 2) -> str:
    """Markdown tables of :func:`aggregate`'s summary, one per group."""
    metric, conf = summary['metric'], summary['confidence']
    pct = f'{100 * conf:g}%'
    lines = []
    for g in summary['groups']:
        base = g['baseline']
        has_test = any('test' in a for a in g['arms'])
        has_paper = any(a['paper'] is not None for a in g['arms'])
        n_seeds = sorted({len(a['seeds']) for a in g['arms']})
        seeds = '/'.join(map(str, n_seeds))
        lines.append(f'**{g["group"]}**: {metric} on the validation set, '
                     f'{seeds} seed{"s" if seeds != "1" else ""} per arm'
                     + (f', {budget}' if budget else '') + '.')
        lines.append('')
        head = ['arm', 'n', 'final (mean ± std)', 'final per seed',
                'best (mean ± std)', f'final − {base} [{pct} CI]']
        if has_test:
            head.insert(5, 'test (mean ± std)')
        if has_paper:
            head.append('paper (full recipe)')
        lines.append('| ' + ' | '.join(head) + ' |')
        lines.append('|' + '---|' * len(head))
        for a in g['arms']:
            diff = a['diff_to_baseline']
            if diff is None:
                dcell = 'baseline'
            else:
                d = diff['final']
                dcell = f'{d["mean"]:+.{digits}f}'
                if d['ci']:
                    dcell += (f' [{d["ci"][0]:+.{digits}f}, '
                              f'{d["ci"][1]:+.{digits}f}]')
                if d['excludes_zero']:
                    dcell += ' *'
            row = [a['arm'], str(a['final']['n']), _pm(a['final'], digits),
                   ' / '.join(_fmt(v, digits) for v in a['final']['values']),
                   _pm(a['best'], digits), dcell]
            if has_test:
                row.insert(5, _pm(a['test'], digits) if 'test' in a else '-')
            if has_paper:
                row.append(_fmt(a['paper'], digits))
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
        lines.append(
            f'final: the last validation; best: the best validation of the '
            f'run (picked on the validation set, so optimistic). The '
            f'difference is paired by seed, with a Student-t {pct} interval '
            f'over the seeds; * marks an interval that excludes 0.'
            + (' paper: the number the paper reports for this config at '
               'its full recipe (metafile.yml).' if has_paper else ''))
        beyond = [p for p in g['pairwise'] if p['final']['excludes_zero']]
        if beyond:
            lines.append('')
            lines.append(
                'Pairs whose final difference excludes 0: ' + ', '.join(
                    f'{p["arm"]} − {p["other"]} = '
                    f'{p["final"]["mean"]:+.{digits}f}' for p in beyond)
                + '.')
        else:
            lines.append('')
            lines.append(f'No pair of arms differs beyond the {pct} '
                         'interval (final metric).')
        lines.append('')
    return '\n'.join(lines)


def plot_comparison(summary: dict, path: str):
    """One panel per group: every seed's final value, the mean with its
    t interval, and the paper's number where there is one."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = summary['groups']
    fig, axes = plt.subplots(1, len(groups),
                             figsize=(1.3 * max(len(g['arms'])
                                                for g in groups) + 2.5,
                                      3.8) if len(groups) == 1 else
                             (4.5 * len(groups), 3.8), squeeze=False)
    pct = f'{100 * summary["confidence"]:g}%'
    for ax, g in zip(axes[0], groups):
        paper_drawn = False
        for x, a in enumerate(g['arms']):
            vals = a['final']['values']
            ax.scatter([x] * len(vals), vals, s=14, color='0.55', zorder=2,
                       label='seeds' if x == 0 else None)
            mean, ci = a['final']['mean'], a['final']['ci']
            err = None if ci is None else [[mean - ci[0]], [ci[1] - mean]]
            ax.errorbar([x + 0.15], [mean], yerr=err, fmt='o', color='C0',
                        capsize=4, zorder=3,
                        label=f'mean, {pct} CI' if x == 0 else None)
            if a['paper'] is not None:
                ax.scatter([x - 0.15], [a['paper']], marker='D',
                           facecolors='none', edgecolors='C3', zorder=3,
                           label=None if paper_drawn else 'paper')
                paper_drawn = True
        ax.set_xticks(range(len(g['arms'])))
        ax.set_xticklabels([a['arm'] for a in g['arms']], rotation=20)
        ax.set_title(g['group'], fontsize=9)
        ax.set_ylabel(f'final {summary["metric"]}')
        ax.grid(axis='y', alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def existing_results(out_dir: str) -> List[str]:
    """The result files of a previous comparison in ``out_dir``."""
    return [osp.join(out_dir, name) for name in RESULT_FILES
            if osp.exists(osp.join(out_dir, name))]


def write_results(summary: dict, records: Sequence[dict], out_dir: str,
                  force: bool = False, budget: str = '',
                  extra: Optional[dict] = None) -> List[str]:
    """Write ``comparison.md``, ``comparison.json`` and ``comparison.png``.

    Raises:
        ComparisonError: If any of them exists and ``force`` is False.
    """
    old = existing_results(out_dir)
    if old and not force:
        raise ComparisonError(
            f'{", ".join(old)} already exist; pass --force to overwrite '
            'them, or give another --out-dir.')
    os.makedirs(out_dir, exist_ok=True)
    paths = [osp.join(out_dir, name) for name in RESULT_FILES]
    with open(paths[0], 'w') as f:
        f.write(format_markdown(summary, budget))
    _write_json(paths[1], dict(summary, budget=budget, runs=list(records),
                               **(extra or {})))
    plot_comparison(summary, paths[2])
    return paths


__all__ = [
    'MODES', 'DONE_MARKER', 'SPEC_FILE', 'RUN_LOG', 'RESULT_FILES',
    'ComparisonError', 'ConfigInfo', 'Run', 'read_config', 'split_name',
    'budget_options', 'parse_variant', 'plan_runs', 'paper_result',
    'run_state', 'train_command', 'test_command', 'validation_history',
    'collect_metrics', 'test_metric', 'execute', 'mean_std', 't_interval',
    'paired_difference', 'aggregate', 'format_markdown', 'plot_comparison',
    'existing_results', 'write_results'
]
