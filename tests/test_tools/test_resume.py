"""tools/train.py: exact resume with the demo's randomness on, and nothing
of an earlier run replaced without --resume or --force.

Real tools/train.py on the digits demo (256 training images, 4 iterations
per epoch), with its random crops and drop path and two dataloader workers.
"""
import hashlib
import os
import os.path as osp
import shutil

import torch

from mmpvg.testing import run_tool

DEMO_CFG = 'configs/demo/vit-demo-mpvg_1xb64_demo-digits.py'


def _options(data_root, epochs, workers=2):
    opts = [f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=1',
            'default_hooks.checkpoint.interval=1',
            'train_dataloader.dataset.indices=256']
    for loader in ('train_dataloader', 'val_dataloader'):
        opts += [f'{loader}.dataset.data_root={data_root}',
                 f'{loader}.num_workers={workers}']
    return ['--cfg-options'] + opts


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)[
        'state_dict']


def _digest(folder):
    """Name -> sha1 of every file directly in ``folder``."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if osp.isfile(path):
            with open(path, 'rb') as f:
                out[name] = hashlib.sha1(f.read()).hexdigest()
    return out


def test_resume_at_an_epoch_boundary_gives_the_same_weights(
        tmp_path, demo_digits):
    full = str(tmp_path / 'full')
    # --resume with nothing to resume starts a new run, and says so
    proc = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', full,
                     '--resume'] + _options(demo_digits, 2))
    log = proc.stdout + proc.stderr
    assert (f"--resume: nothing to resume in work dir '{full}' (no "
            'last_checkpoint); starting a NEW run from the beginning.') in log
    assert 'Auto resumed from the latest checkpoint None' not in log

    # the run interrupted after epoch 1: its work dir as it was then
    part = tmp_path / 'part'
    part.mkdir()
    shutil.copy(osp.join(full, 'epoch_1.pth'), part)
    (part / 'last_checkpoint').write_text(str(part / 'epoch_1.pth'))
    proc = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', str(part),
                     '--resume'] + _options(demo_digits, 2))
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 4' in log
    assert 'random-number state of the checkpoint is restored' in log

    a = _weights(osp.join(full, 'epoch_2.pth'))
    b = _weights(str(part / 'epoch_2.pth'))
    assert a.keys() == b.keys()
    diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    # Same process, same operations, same random numbers: bit-identical.
    # (Without the saved state the difference is ~1e-3.)
    assert diff == 0.0, diff
    # and training did move the weights in epoch 2
    first = _weights(osp.join(full, 'epoch_1.pth'))
    assert max((a[k].float() - first[k].float()).abs().max().item()
               for k in a) > 1e-4


def test_work_dir_with_checkpoints_needs_resume_or_force(
        tmp_path, demo_digits):
    work = tmp_path / 'work'
    work.mkdir()
    # an earlier run's files (their contents do not matter to the check)
    (work / 'epoch_1.pth').write_bytes(b'earlier run')
    (work / 'epoch_2.pth').write_bytes(b'earlier run 2')
    before = _digest(str(work))
    proc = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', str(work)] +
                    _options(demo_digits, 1), check=False)
    assert proc.returncode != 0
    assert (f"Work dir '{work}' already holds checkpoints of a previous run "
            '(epoch_1.pth, epoch_2.pth); a new run would overwrite them. '
            'Pass --resume to continue that run, --force to start afresh '
            'and overwrite them, or another --work-dir.') in proc.stderr
    assert _digest(str(work)) == before

    # --resume without last_checkpoint would start afresh over them
    proc = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', str(work),
                     '--resume'] + _options(demo_digits, 1), check=False)
    assert proc.returncode != 0
    assert (f"--resume: work dir '{work}' has no last_checkpoint to resume "
            'from but holds epoch_1.pth, epoch_2.pth. Pass --resume PATH to '
            'resume from one of them, or --force') in proc.stderr
    assert _digest(str(work)) == before

    # last_checkpoint naming a missing file
    (work / 'last_checkpoint').write_text(str(work / 'epoch_9.pth'))
    proc = run_tool(['tools/train.py', DEMO_CFG, '--work-dir', str(work),
                     '--resume'] + _options(demo_digits, 1), check=False)
    assert proc.returncode != 0
    assert (f"--resume: {work / 'last_checkpoint'} names "
            f"'{work / 'epoch_9.pth'}', which does not exist.") in proc.stderr
    os.remove(work / 'last_checkpoint')

    # --force: a new run that overwrites epoch_1.pth (one short epoch)
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', str(work), '--force']
             + _options(demo_digits, 1, workers=0))
    assert 'state_dict' in torch.load(
        work / 'epoch_1.pth', map_location='cpu', weights_only=True)
    assert (work / 'epoch_2.pth').read_bytes() == b'earlier run 2'
