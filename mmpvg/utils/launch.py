# Copyright (c) mmpvg contributors. All rights reserved.
"""What ``tools/train.py`` and ``tools/test.py`` share across the three tasks.

The entry points load a config, find its ``default_scope`` (mmpretrain,
mmdet or mmseg) and apply what that package's own tool would, so one pair
of tools serves classification, detection and segmentation.
"""
import os
import os.path as osp
from copy import deepcopy

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

SUPPORTED_SCOPES = ('mmpretrain', 'mmdet', 'mmseg')


def add_launch_args(parser):
    """The options train.py and test.py share: --work-dir, --cfg-options,
    --launcher and --local-rank."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs (e.g. '
        'train_cfg.max_epochs=10)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


# Top-level keys a config may gain from --cfg-options although it does not
# set them: what the Runner reads from its config beyond its constructor
# arguments (model wrapping, activation checkpointing, torch.compile, ...)
# and what the tools read (runner_type).
RUNNER_CFG_KEYS = ('model_wrapper_cfg', 'find_unused_parameters', 'sync_bn',
                   'activation_checkpointing', 'efficient_conv_bn_eval',
                   'compile', 'runner_type', 'custom_imports')


def check_cfg_options(cfg: Config, cfg_options: dict):
    """Refuse a ``--cfg-options`` key whose top level is neither in the
    config nor read by the Runner or the tools: mmengine would add it and
    nothing would ever read it (a misspelling silently does nothing).

    Raises:
        ValueError: Naming the key and the closest known ones.
    """
    import difflib
    import inspect

    from mmengine.runner import Runner
    runner_keys = (set(RUNNER_CFG_KEYS) | set(
        inspect.signature(Runner.__init__).parameters)) - {'self', 'cfg'}
    known = set(cfg.keys()) | runner_keys
    for key in cfg_options:
        top = key.split('.', 1)[0]
        if top in known:
            continue
        close = difflib.get_close_matches(top, sorted(known), n=3)
        hint = (f' Did you mean {" or ".join(map(repr, close))}?'
                if close else '')
        raise ValueError(
            f'--cfg-options {key}: {top!r} is neither a top-level key of the '
            f'config nor one the Runner reads, so it would be ignored.{hint} '
            'Accepted: a top-level key of the config, or one of '
            f'{sorted(runner_keys - set(cfg.keys()))}.')


def load_config(path: str, cfg_options=None) -> Config:
    """Load a config, merge ``--cfg-options`` and check its scope.

    Raises:
        FileNotFoundError: If the config file does not exist.
        ValueError: If ``default_scope`` is missing or not supported, or a
            ``--cfg-options`` key would be ignored (:func:`check_cfg_options`).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file {path!r} does not exist.')
    cfg = Config.fromfile(path)
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in SUPPORTED_SCOPES:
        raise ValueError(
            f'{path}: default_scope={scope!r} is not supported; the config '
            f'must set default_scope to one of {SUPPORTED_SCOPES}.')
    return cfg


def set_work_dir(cfg: Config, config_path: str, work_dir=None):
    """CLI ``--work-dir`` > ``work_dir`` in the file > ./work_dirs/<name>."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def apply_scope_defaults(cfg: Config):
    """Per-package defaults that each package's own tools/train.py sets."""
    scope = cfg.default_scope
    if scope == 'mmpretrain':
        # mmpretrain's train/test tools default to these dataloader options.
        for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if cfg.get(field) is None:
                continue
            loader = ConfigDict(
                pin_memory=torch.cuda.is_available(),
                persistent_workers=cfg[field].get('num_workers', 0) > 0,
                collate_fn=dict(type='default_collate'))
            loader.update(cfg[field])
            cfg[field] = loader
    elif scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()


def enable_amp(cfg: Config):
    """Switch the optimizer wrapper to AMP with a dynamic loss scale."""
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, '
                         f'got {wrapper!r}.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def enable_auto_scale_lr(cfg: Config):
    """Turn on mmengine's lr scaling by actual / ``base_batch_size``."""
    scale = cfg.get('auto_scale_lr') or {}
    if 'base_batch_size' not in scale:
        raise ValueError(
            '--auto-scale-lr needs auto_scale_lr = dict(base_batch_size=N) '
            'in the config (N: the total batch size its lr was tuned for), '
            f'got auto_scale_lr={scale or None}.')
    cfg.auto_scale_lr = dict(scale, enable=True)


def setup_cpu_distributed(cfg: Config):
    """Let ``--launcher pytorch`` run on machines without a GPU.

    mmengine's launcher calls ``torch.cuda.set_device`` and wraps the model in
    DDP with ``device_ids``; both fail without CUDA. Here the process group is
    initialised with gloo first (the Runner then skips its own init) and the
    DDP wrapper is configured without device ids.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
        print_log(
            f'No CUDA device: initialised the process group with gloo '
            f'(rank {torch_dist.get_rank()} of {torch_dist.get_world_size()}).',
            logger='current')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,  # CPU modules take no device ids
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def build_runner(cfg: Config):
    """Build the Runner (or a registered custom runner), as the tools do."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def ensure_local_rank(local_rank: int):
    """torch.distributed.launch passes --local-rank; torchrun sets the env."""
    os.environ.setdefault('LOCAL_RANK', str(local_rank))


# What a training run leaves in its work dir (CheckpointHook's files and
# its last_checkpoint pointer): a new run there would overwrite them, and
# max_keep_ckpts would delete some.
CHECKPOINT_PATTERNS = ('epoch_*.pth', 'iter_*.pth', 'best_*.pth',
                       'last_checkpoint')


def previous_checkpoints(work_dir: str) -> list:
    """The names of ``work_dir``'s files of an earlier run, sorted."""
    import glob
    found = set()
    for pattern in CHECKPOINT_PATTERNS:
        found.update(osp.basename(p)
                     for p in glob.glob(osp.join(glob.escape(work_dir),
                                                 pattern)))
    return sorted(found)


def check_work_dir(cfg: Config, resume=None, force: bool = False):
    """Refuse a training run that would replace another run's checkpoints.

    Args:
        cfg (Config): The config, ``work_dir`` set.
        resume (str | None): ``--resume``: None, ``'auto'`` (no value) or
            a checkpoint path.
        force (bool): ``--force``: start afresh and overwrite them.

    Returns:
        str | None: With ``--resume`` and nothing to resume, the line to log;
        the run then starts as without ``--resume``.

    Raises:
        FileExistsError: If the work dir holds checkpoints, and neither
            ``--resume`` nor ``--force`` is given, or ``--resume`` has no
            ``last_checkpoint`` to follow.
        FileNotFoundError: If ``last_checkpoint`` names a missing file.
    """
    if resume is None and cfg.get('resume'):  # resume=True in the file
        resume = cfg.get('load_from') or 'auto'
    work_dir = cfg.work_dir
    found = previous_checkpoints(work_dir)
    shown = ', '.join(found[:4]) + (', ...' if len(found) > 4 else '')
    if resume is None:
        if found and not force:
            raise FileExistsError(
                f'Work dir {work_dir!r} already holds checkpoints of a '
                f'previous run ({shown}); a new run would overwrite them. '
                'Pass --resume to continue that run, --force to start '
                'afresh and overwrite them, or another --work-dir.')
        return None
    if resume != 'auto':
        return None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            latest = f.read().strip()
        if not osp.isfile(latest):
            raise FileNotFoundError(
                f'--resume: {pointer} names {latest!r}, which does not '
                'exist. Pass --resume PATH with the checkpoint to resume '
                'from.')
        return None
    if found and not force:
        raise FileExistsError(
            f'--resume: work dir {work_dir!r} has no last_checkpoint to '
            f'resume from but holds {shown}. Pass --resume PATH to resume '
            'from one of them, or --force to start afresh and overwrite '
            'them.')
    cfg.resume = False
    return (f'--resume: nothing to resume in work dir {work_dir!r} (no '
            'last_checkpoint); starting a NEW run from the beginning.')


def enable_exact_resume(cfg: Config):
    """Make a run resumed at an epoch boundary continue as the
    uninterrupted run would (README, "Exact resume").

    Adds :class:`mmpvg.engine.RNGStateHook` to ``custom_hooks`` (unless the
    config lists it), and, for a train dataloader with workers, seeds them
    with :func:`mmpvg.engine.seed_dataloader_worker` (unless the config
    sets a ``worker_init_fn``) and turns ``persistent_workers`` off: a
    persistent worker's generators live on in its own process, and no
    checkpoint can hold them.
    """
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(h, dict) and
               str(h.get('type', '')).rsplit('.', 1)[-1] == 'RNGStateHook'
               for h in hooks):
        hooks.append(dict(type='RNGStateHook'))
    cfg.custom_hooks = hooks
    loader = cfg.get('train_dataloader')
    if loader and loader.get('num_workers', 0) > 0 and \
            'worker_init_fn' not in loader:
        loader.worker_init_fn = dict(type='seed_dataloader_worker')
        loader.persistent_workers = False


def refuse_overwrite(path: str, option: str):
    """Refuse to replace an existing output without ``--force``.

    An empty directory holds nothing to lose and is accepted.

    Args:
        path (str): The output file or directory.
        option (str): The option that named it, for the message.

    Raises:
        FileExistsError: If ``path`` is a file or a non-empty directory.
    """
    if osp.isdir(path) and not os.listdir(path):
        return
    if osp.lexists(path):
        kind = 'directory' if osp.isdir(path) else 'file'
        raise FileExistsError(
            f'{option} {path!r}: the {kind} already exists; refusing to '
            'overwrite it. Pass --force to replace it, or choose another '
            'path.')


def dump_results_metric(scope: str, out: str):
    """The metric that dumps raw predictions for ``tools/test.py --out``
    (classification and detection; mmseg writes label maps instead)."""
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file, got {out!r}.')
    if scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        return DumpDetResults(out_file_path=out)
    from mmengine.evaluator import DumpResults
    return DumpResults(out_file_path=out)


def evaluator_metrics(evaluator) -> list:
    """The metric configs of an evaluator config, in every form mmengine
    builds: one metric dict, a list of them, or ``dict(metrics=...)`` (a
    custom Evaluator holding a metric dict or a list).

    The entries are returned themselves, not copies, so that a caller can
    change them in place.
    """
    if isinstance(evaluator, dict):
        if 'metrics' in evaluator:
            return evaluator_metrics(evaluator['metrics'])
        return [evaluator]
    if isinstance(evaluator, (list, tuple)):
        return list(evaluator)
    raise TypeError('An evaluator config is a metric dict, a list of them or '
                    f'dict(metrics=...), got {type(evaluator).__name__}.')


def _metric_type(metric) -> str:
    """'IoUMetric' for ``dict(type='IoUMetric')``, 'mmseg.IoUMetric', the
    class itself (lazy configs) or a built metric."""
    kind = metric.get('type') if isinstance(metric, dict) else type(metric)
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    return name.rsplit('.', 1)[-1]


def set_segmentation_output(cfg: Config, out_dir: str):
    """``tools/test.py --out`` for mmseg: every IoUMetric of
    ``test_evaluator`` (a dict or a list) writes the predicted label maps
    into ``out_dir`` and keeps the results for its metrics.

    Raises:
        ValueError: If ``test_evaluator`` has no IoUMetric.
    """
    metrics = evaluator_metrics(cfg.test_evaluator)
    iou = [m for m in metrics
           if isinstance(m, dict) and _metric_type(m) == 'IoUMetric']
    if not iou:
        raise ValueError(
            '--out for a segmentation config writes label maps through '
            "mmseg's IoUMetric (output_dir), but test_evaluator has none: "
            f'its metrics are {[_metric_type(m) for m in metrics]}.')
    for metric in iou:
        metric['output_dir'] = out_dir
        metric['keep_results'] = True


def prepare_test_output(cfg: Config, out: str):
    """What ``tools/test.py --out`` changes, before the Runner is built.

    For mmseg the IoUMetric entries of ``test_evaluator`` are set to write
    label maps into the directory ``out`` (:func:`set_segmentation_output`).
    For classification and detection ``out`` must be a .pkl file, and the
    metric that dumps the raw predictions there is returned: append it to
    ``runner.test_evaluator.metrics``, the Evaluator the Runner built from
    ``test_evaluator`` (whichever form it had).

    Returns:
        BaseMetric | None: The dump metric, or None for mmseg.

    Raises:
        ValueError: As :func:`set_segmentation_output` and
            :func:`dump_results_metric`.
    """
    if cfg.default_scope == 'mmseg':
        set_segmentation_output(cfg, out)
        return None
    return dump_results_metric(cfg.default_scope, out)


def enable_visualization(cfg: Config, show_dir: str):
    """Turn on the scope's visualization hook and save images to show_dir."""
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise ValueError('--show-dir needs a `visualization` hook in '
                         'default_hooks (the packages\' default runtimes '
                         'have one).')
    hook = deepcopy(hooks['visualization'])
    if cfg.default_scope == 'mmpretrain':
        hook.update(enable=True, out_dir=show_dir)
    elif cfg.default_scope == 'mmdet':
        hook.update(draw=True, test_out_dir=show_dir)
    else:
        hook.update(draw=True, interval=1)
        cfg.visualizer['save_dir'] = show_dir
    cfg.default_hooks.visualization = hook
