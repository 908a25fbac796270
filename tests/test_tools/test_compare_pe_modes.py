"""tools/analysis_tools/compare_pe_modes.py end to end on the digits demo:
two modes, two seeds, two one-iteration epochs, every run through the real
tools/train.py (one of them interrupted first and resumed by the
comparison) and tools/test.py."""
import glob
import json
import os.path as osp
import re

from mmpvg.analysis import pe_mode_comparison as cmp
from mmpvg.testing import REPO_ROOT, run_tool

TOOL = 'tools/analysis_tools/compare_pe_modes.py'
CONFIGS = [f'configs/demo/vit-demo-{mode}_1xb64_demo-digits.py'
           for mode in ('cls', 'mpvg')]


def tiny_options(data_root):
    # 1 warm-up epoch instead of 3, so that a 2-epoch budget fits; 64 of
    # the 359 validation digits; no loader workers.
    opts = ['param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
            'val_dataloader.dataset.indices=64',
            'test_dataloader.dataset.indices=64']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={data_root}',
                 f'{loader}.num_workers=0']
    return opts


def test_compare_two_modes_two_seeds(tmp_path, demo_digits):
    out = str(tmp_path / 'cmp')
    opts = tiny_options(demo_digits)
    args = [TOOL] + CONFIGS + ['--out-dir', out, '--seeds', '0', '1',
                               '--epochs', '2', '--train-subset', '64',
                               '--val-interval', '1', '--cfg-options'] + opts

    # An interrupted run: mpvg seed 1 stopped after its first epoch (its
    # checkpoint and last_checkpoint written by tools/train.py itself).
    runs = cmp.plan_runs([osp.join(REPO_ROOT, c) for c in CONFIGS], out,
                         seeds=[0, 1], epochs=2, train_subset=64,
                         val_interval=1, cfg_options=opts)
    cut = next(r for r in runs if r.mode == 'mpvg' and r.seed == 1)
    cut.config = CONFIGS[1]  # as the tool, run from the repository root
    run_tool(cmp.train_command(cut, 'tools')[1:] + [
        'train_cfg.max_epochs=1'])
    assert osp.isfile(osp.join(cut.work_dir, 'epoch_1.pth'))
    with open(osp.join(cut.work_dir, cmp.SPEC_FILE), 'w') as f:
        json.dump(cut.spec(), f)

    proc = run_tool(args)
    log = proc.stdout
    assert '[compare] 4 runs: 2 config(s) x 1 mode(s)' in log
    for i in (1, 2, 3, 4):
        assert f'[compare] run {i}/4' in log, log
    assert re.search(r'run 4/4 mpvg seed=1: epoch 2/2 \(run [0-9:]+, '
                     r'total [0-9:]+, ~[0-9:]+ left\)', log), log
    assert 'mode=mpvg seed=1 (resuming)' in log
    # mmengine itself resumed from epoch 1 (its own log line)
    with open(osp.join(cut.work_dir, cmp.RUN_LOG)) as f:
        assert 'resumed epoch: 1' in f.read()

    with open(osp.join(out, 'comparison.json')) as f:
        result = json.load(f)
    (group, ) = result['groups']
    assert group['group'] == 'vit-demo_1xb64_demo-digits'
    assert [a['arm'] for a in group['arms']] == ['cls', 'mpvg']
    assert group['baseline'] == 'cls'
    for rec in result['runs']:
        assert [s for s, _ in rec['history']] == [1, 2]
        # the final value is the one mmengine logged for epoch 2
        logs = glob.glob(osp.join(rec['work_dir'], '2*', '2*.log'))
        logged = [float(v) for path in sorted(logs)
                  for v in re.findall(r'Epoch\(val\) \[2\]\[\d+/\d+\]\s+'
                                      r'accuracy/top1: ([0-9.]+)',
                                      open(path).read())]
        assert logged and rec['final'] == logged[-1]
        assert 0 <= rec['final'] <= 100
    mpvg = group['arms'][1]
    finals = mpvg['final']['values']
    diff = mpvg['diff_to_baseline']['final']
    cls_finals = group['arms'][0]['final']['values']
    assert diff['mean'] == (finals[0] - cls_finals[0] + finals[1] -
                            cls_finals[1]) / 2
    md = open(osp.join(out, 'comparison.md')).read()
    assert '| mpvg | 2 |' in md and 'final − cls [95% CI]' in md
    assert osp.getsize(osp.join(out, 'comparison.png')) > 0

    # A rerun keeps the results unless told otherwise ...
    proc = run_tool(args, check=False)
    assert proc.returncode == 1
    assert 'comparison.md' in proc.stderr
    assert 'already exist; pass --force to overwrite them' in proc.stderr
    # ... and with --force trains nothing again; --test evaluates every
    # final checkpoint with tools/test.py.
    proc = run_tool(args + ['--force', '--test'])
    assert '4 of 4 runs already finished (kept); 0 to train.' in proc.stdout
    assert '[compare] run 1/' not in proc.stdout
    with open(osp.join(out, 'comparison.json')) as f:
        result = json.load(f)
    for rec in result['runs']:
        # test == val here (the demo's test set is its validation set)
        assert rec['test'] == rec['final']
    table = open(osp.join(out, 'comparison.md')).read()
    assert 'test (mean ± std)' in table

    # --collect-only reports the same finished runs without training
    proc = run_tool(args + ['--force', '--collect-only'])
    assert '4 of 4 runs already finished (kept); 0 to train.' in proc.stdout
    assert table.split('\n')[4] in proc.stdout  # the cls row, unchanged
