# Copyright (c) mmpvg contributors. All rights reserved.
"""Exact resume at epoch boundaries: the random-number state in checkpoints.

mmengine's checkpoints hold the weights, the optimizer, the schedulers and
the seed, but not the generators' state: a resumed run draws other random
crops and other drop-path masks than the uninterrupted one from the resumed
epoch on. :class:`RNGStateHook` stores the state of Python's ``random``,
NumPy's global generator, torch's CPU generator (and the CUDA ones), per
process, and the train sampler's seed, and restores them at the start of
the next epoch, in the resumed run and in the uninterrupted run alike.

:func:`seed_dataloader_worker` seeds a dataloader worker from the seed
torch gives it, which is drawn from the main process's torch generator
when the epoch's iterator is created, so the workers' random numbers follow
the restored state too (mmengine's default seeds every epoch's workers
with the same fixed numbers).
"""
import os
import random

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import FUNCTIONS, HOOKS

CKPT_KEY = 'rng_state'


def get_rng_state() -> dict:
    """This process's generator states, in types that ``torch.load`` reads
    with ``weights_only=True`` (tensors, lists, numbers, None).

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and ``cuda`` states.
    """
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return dict(
        python=[version, list(internal), gauss],
        numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype(np.int64)),
                   pos=int(pos), has_gauss=int(has_gauss),
                   cached_gaussian=float(cached)),
        torch=torch.get_rng_state(),
        cuda=cuda)


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned (CUDA only where this
    process sees the same number of devices)."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    np_state = state['numpy']
    np.random.set_state(
        (np_state['kind'], np_state['keys'].numpy().astype(np.uint32),
         np_state['pos'], np_state['has_gauss'],
         np_state['cached_gaussian']))
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and \
            len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


@FUNCTIONS.register_module()
def seed_dataloader_worker(worker_id: int) -> None:
    """``worker_init_fn`` that follows the main process's torch generator.

    torch gives each worker ``torch.initial_seed()`` = a base seed drawn
    from the main process's generator when the iterator is created, plus
    the worker id. Python's ``random``, NumPy and torch in the worker are
    seeded from it and the process rank (``RANK``), so every epoch's
    workers draw new numbers, different on each rank, that a restored
    main-process state reproduces.

    Args:
        worker_id (int): The worker's index (already in the base seed).
    """
    rank = int(os.environ.get('RANK', 0))
    words = np.random.SeedSequence(
        [torch.initial_seed(), rank]).generate_state(4)
    np.random.seed(int(words[0]))
    random.seed(int(words[1]))
    torch.manual_seed((int(words[2]) << 32) | int(words[3]))


def _seeded_sampler(dataloader):
    """The sampler whose ``seed`` decides the shuffle, or None."""
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    for sampler in (getattr(batch_sampler, 'sampler', None),
                    getattr(dataloader, 'sampler', None)):
        if hasattr(sampler, 'seed'):
            return sampler
    return None


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the random-number state with each epoch checkpoint and restore
    it when training resumes, so that a run interrupted at an epoch
    boundary and resumed gives the weights of the uninterrupted run.

    At the end of every epoch each process's state is taken (and gathered
    to rank 0, the process that writes checkpoints); a checkpoint saved at
    that point gets it under ``checkpoint['rng_state']``. At the start of
    the next epoch every process restores it: in a resumed run from the
    checkpoint, in an uninterrupted run from memory, so that what draws
    random numbers in between (validation, logging, building the model and
    its initialisation when resuming) changes nothing in training.

    Iteration-based loops and checkpoints saved mid-epoch are left as they
    are (see README, "Exact resume").
    """

    # After ParamSchedulerHook and before CheckpointHook ('VERY_LOW'): the
    # state is taken before the checkpoint of the epoch is written, and
    # restored after the other hooks' before_train_epoch.
    priority = 'LOW'

    def __init__(self):
        self._states = None  # one entry per rank, on every rank
        self._iter = None  # the iteration they were taken at
        self._sampler_seed = None

    @staticmethod
    def _epoch_based(runner) -> bool:
        # Imported here: mmengine.runner is heavy and `import mmpvg` light.
        from mmengine.runner import EpochBasedTrainLoop
        return isinstance(runner.train_loop, EpochBasedTrainLoop)

    def after_train_epoch(self, runner) -> None:
        if not self._epoch_based(runner):
            return
        state = get_rng_state()
        _, world_size = get_dist_info()
        self._states = all_gather_object(state) if world_size > 1 \
            else [state]
        self._iter = runner.iter
        sampler = _seeded_sampler(runner.train_dataloader)
        self._sampler_seed = None if sampler is None else sampler.seed

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # Only a checkpoint written at the epoch boundary the state was
        # taken at (not one saved mid-epoch by iteration).
        if self._states is not None and runner.iter == self._iter:
            checkpoint[CKPT_KEY] = dict(
                ranks=self._states, iter=self._iter,
                sampler_seed=self._sampler_seed)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # load_from (fine-tuning, testing) starts the generators afresh.
        if not getattr(runner, '_resume', False) or \
                not self._epoch_based(runner):
            return
        saved = checkpoint.get(CKPT_KEY)
        if saved is None:
            runner.logger.warning(
                'The resumed checkpoint holds no random-number state (it was '
                'written without RNGStateHook): from here the random crops, '
                'drop-path masks and shuffles differ from an uninterrupted '
                'run.')
            return
        rank, world_size = get_dist_info()
        if len(saved['ranks']) != world_size:
            runner.logger.warning(
                f'The random-number state in the checkpoint is of '
                f'{len(saved["ranks"])} processes and this run has '
                f'{world_size}: it is not restored, so the run continues '
                'with other random numbers than an uninterrupted one.')
            return
        self._states, self._iter = saved['ranks'], saved['iter']
        sampler = _seeded_sampler(runner.train_dataloader)
        seed = saved.get('sampler_seed')
        if sampler is not None and seed is not None and sampler.seed != seed:
            # The sampler was built with this run's seed before resuming.
            sampler.seed = seed
        epoch = checkpoint.get('meta', {}).get('epoch', 0)
        runner.logger.info(
            'RNGStateHook: the random-number state of the checkpoint is '
            f'restored at the start of epoch {epoch + 1}.')

    def before_train_epoch(self, runner) -> None:
        if self._states is None or not self._epoch_based(runner):
            return
        rank, _ = get_dist_info()
        set_rng_state(self._states[rank])
