"""mmpvg.analysis.pe_mode_comparison: statistics against hand-computed
values, planning on the project's configs, and the run queue (skipping
finished runs, resuming an interrupted one) driven through a real
subprocess per run (a stand-in trainer launched by the command template;
the real tools/train.py is exercised in tests/test_tools)."""
import json
import math
import os
import os.path as osp
import sys
import textwrap

import pytest

from mmpvg.analysis import pe_mode_comparison as cmp
from mmpvg.testing import REPO_ROOT

DEMO = osp.join(REPO_ROOT, 'configs/demo/vit-demo-mpvg_1xb64_demo-digits.py')
DEIT = osp.join(REPO_ROOT, 'configs/mpvg/deit-tiny-mpvg_8xb128_in1k.py')


# --------------------------------------------------------------- statistics
def test_mean_std_and_t_interval_by_hand():
    s = cmp.mean_std([1.0, 2.0, 3.0, 4.0])
    assert s['n'] == 4 and s['mean'] == 2.5
    assert s['std'] == pytest.approx(math.sqrt(5 / 3))  # sum sq dev 5, n-1
    # t(0.975, df=3) = 3.182446 (tables); half = t * std / sqrt(4)
    half = 3.182446 * math.sqrt(5 / 3) / 2
    low, high = cmp.t_interval([1.0, 2.0, 3.0, 4.0], 0.95)
    assert low == pytest.approx(2.5 - half, abs=1e-5)
    assert high == pytest.approx(2.5 + half, abs=1e-5)
    assert cmp.mean_std([7.0]) == dict(n=1, mean=7.0, std=None)
    assert cmp.t_interval([7.0]) is None


def test_paired_difference_by_hand():
    arm = {0: 90.0, 1: 92.0, 2: 91.0, 5: 99.0}  # seed 5 has no partner
    base = {0: 88.0, 1: 91.0, 2: 88.0}
    d = cmp.paired_difference(arm, base, 0.95)
    # differences 2, 1, 3: mean 2, std 1; t(0.975, 2) = 4.302653
    assert d['seeds'] == [0, 1, 2] and d['n'] == 3
    assert d['mean'] == pytest.approx(2.0) and d['std'] == pytest.approx(1.0)
    half = 4.302653 / math.sqrt(3)
    assert d['ci'] == pytest.approx([2 - half, 2 + half], abs=1e-5)
    assert not d['excludes_zero']
    # t = 2 / (1 / sqrt 3) = sqrt 12; for df = 2 the tail has a closed
    # form, P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2.
    t = math.sqrt(12)
    assert d['p_value'] == pytest.approx(1 - t / math.sqrt(t * t + 2))

    tight = cmp.paired_difference({0: 2.0, 1: 2.1, 2: 1.9},
                                  {0: 0.0, 1: 0.0, 2: 0.0})
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert tight['ci'] == pytest.approx([2 - half, 2 + half], abs=1e-5)
    assert tight['excludes_zero']
    # equal differences: no spread, so no p-value; one pair: no interval
    assert cmp.paired_difference({0: 1.0, 1: 2.0},
                                 {0: 0.0, 1: 1.0})['p_value'] is None
    one = cmp.paired_difference({0: 1.0}, {0: 0.0})
    assert one['ci'] is None and not one['excludes_zero']


def _record(arm, seed, final, best=None, group='g'):
    return dict(group=group, arm=arm, mode=arm, variant=None, seed=seed,
                config='c.py', metric='accuracy/top1', final=final,
                best=final if best is None else best, paper_config=None)


def test_aggregate_and_markdown():
    recs = [_record('cls', 0, 80.0), _record('cls', 1, 82.0, best=83.0),
            _record('mpvg', 0, 84.0), _record('mpvg', 1, 85.0),
            _record('gap', 0, 70.0), _record('gap', 1, 71.0)]
    summary = cmp.aggregate(recs)  # baseline: the group's first arm
    (g, ) = summary['groups']
    assert g['baseline'] == 'cls'
    arms = {a['arm']: a for a in g['arms']}
    assert arms['cls']['final']['mean'] == 81.0
    assert arms['cls']['final']['std'] == pytest.approx(math.sqrt(2))
    assert arms['cls']['best']['mean'] == 81.5  # 80 and 83
    assert arms['cls']['diff_to_baseline'] is None
    # mpvg - cls: 4, 3 -> mean 3.5, std sqrt(0.5); t(0.975, 1) = 12.7062
    d = arms['mpvg']['diff_to_baseline']['final']
    half = 12.706205 * math.sqrt(0.5) / math.sqrt(2)
    assert d['mean'] == 3.5
    assert d['ci'] == pytest.approx([3.5 - half, 3.5 + half], abs=1e-4)
    assert arms['mpvg']['diff_to_baseline']['best']['mean'] == 3.0
    assert len(g['pairwise']) == 3
    # gap - cls: -10, -11 (std sqrt 0.5): -10.5 +- 6.35 excludes 0
    gap = next(p for p in g['pairwise']
               if (p['arm'], p['other']) == ('gap', 'cls'))
    assert gap['final']['mean'] == -10.5 and gap['final']['excludes_zero']

    md = cmp.format_markdown(summary, budget='2 epochs')
    assert '| mpvg | 2 | 84.50 ± 0.71 | 84.00 / 85.00 |' in md
    assert 'final − cls [95% CI]' in md and 'baseline' in md
    assert 'gap − cls = -10.50' in md
    assert 'paper' not in md.split('\n')[2]  # no paper column without one

    with pytest.raises(cmp.ComparisonError,
                       match=r"--baseline 'pvg' is not an arm of g; its "
                       r"arms are \['cls', 'mpvg', 'gap'\]"):
        cmp.aggregate(recs, baseline='pvg')
    summary = cmp.aggregate(recs, baseline='mpvg')
    arms = {a['arm']: a for a in summary['groups'][0]['arms']}
    assert arms['cls']['diff_to_baseline']['final']['mean'] == -3.5


# ----------------------------------------------------------------- planning
def test_split_name():
    assert cmp.split_name('vit-demo-mpvg_1xb64_demo-digits', 'mpvg') == (
        'vit-demo_1xb64_demo-digits', '', 'vit-demo')
    assert cmp.split_name('deit-tiny-mpvg-non-hierarchical_8xb128_in1k',
                          'mpvg') == ('deit-tiny_8xb128_in1k',
                                      'non-hierarchical', 'deit-tiny')
    assert cmp.split_name('my_model', 'pvg') == ('my_model', '', 'my')


def test_budget_options_and_their_errors():
    info = cmp.read_config(DEMO)
    assert (info.by_epoch, info.length, info.pe_mode) == (True, 30, 'mpvg')
    # the cosine decay that ended with the 30 epochs ends with the budget
    assert cmp.budget_options(info, epochs=12) == [
        'train_cfg.max_epochs=12', 'param_scheduler.1.end=12']
    assert cmp.budget_options(info, train_subset=100, val_interval=2) == [
        'train_dataloader.dataset.indices=100', 'train_cfg.val_interval=2']
    with pytest.raises(cmp.ComparisonError,
                       match=r'trains by epochs \(train_cfg.max_epochs=30\); '
                       'give --epochs, not --iters'):
        cmp.budget_options(info, iters=100)
    # the 3 warm-up epochs do not fit in 3, as the cosine starts after them
    for short in (2, 3):
        with pytest.raises(
                cmp.ComparisonError,
                match=rf'a budget of {short} epochs is too short for its '
                r'schedule \(param_scheduler\[0\] \(LinearLR, epochs 0-3\), '
                r'param_scheduler\[1\] \(CosineAnnealingLR, epochs 3-30\)\), '
                'which needs at least 4; give a budget of 4 or more, or move '
                'those boundaries with --cfg-options'):
            cmp.budget_options(info, epochs=short)
    assert cmp.budget_options(info, epochs=4)[1] == 'param_scheduler.1.end=4'
    with pytest.raises(cmp.ComparisonError, match='at least 1, got 0'):
        cmp.budget_options(info, train_subset=0)
    # the user's overrides are read before the budget is checked
    info = cmp.read_config(DEMO, ['param_scheduler.0.end=1',
                                  'param_scheduler.1.begin=1'])
    assert cmp.budget_options(info, epochs=2) == [
        'train_cfg.max_epochs=2', 'param_scheduler.1.end=2']
    with pytest.raises(cmp.ComparisonError, match="'nope.py' does not exist"):
        cmp.read_config('nope.py')


def test_plan_runs_and_paper_numbers(tmp_path):
    runs = cmp.plan_runs([DEIT], str(tmp_path), seeds=[0, 1],
                         modes=['cls', 'gap', 'mpvg'], epochs=30,
                         variants=[('default', []),
                                   ('nh', ['model.backbone.hierarchical_pe'
                                           '=False'])])
    assert len(runs) == 12
    assert [r.seed for r in runs] == [0] * 6 + [1] * 6  # seed-major
    first = runs[0]
    assert first.work_dir == osp.join(
        str(tmp_path), 'deit-tiny-mpvg_8xb128_in1k', 'cls+default', 'seed0')
    assert first.group == 'deit-tiny_8xb128_in1k'
    assert first.arm == 'cls+default'
    assert first.cfg_options == ['train_cfg.max_epochs=30',
                                 'randomness.seed=0',
                                 'model.backbone.pe_mode=cls']
    assert first.final_checkpoint == 'epoch_30.pth'
    # the DeiT cosine has no end: mmengine ends it with the training
    assert not any('param_scheduler' in o for o in first.cfg_options)
    nh = runs[1]
    assert nh.cfg_options[-1] == 'model.backbone.hierarchical_pe=False'
    # The paper's number belongs to the config of the run's own mode, and
    # only to an unmodified model.
    assert cmp.paper_result(first.paper_config, 'accuracy/top1') == 72.14
    assert nh.paper_config is None
    mpvg = runs[4]
    assert mpvg.mode == 'mpvg' and 'model.backbone.pe_mode' not in ' '.join(
        mpvg.cfg_options)
    assert cmp.paper_result(mpvg.paper_config, 'accuracy/top1') == 73.51
    # DeiT-Ti GAP: 72.40, from the paper's Fig. 5 ablation
    assert cmp.paper_result(runs[2].paper_config, 'accuracy/top1') == 72.4
    # a config the paper reports nothing for
    ceit_gap = osp.join(REPO_ROOT,
                        'configs/mpvg/ceit-tiny-gap_8xb128_in1k.py')
    assert cmp.paper_result(ceit_gap, 'accuracy/top1') is None
    # demo metafile numbers are this project's, not the paper's
    assert cmp.paper_result(DEMO, 'accuracy/top1') is None
    coco = osp.join(
        REPO_ROOT, 'configs/mask_rcnn/'
        'mask-rcnn_vit-adapter-ti-mpvg_fpn_8xb1-ms-crop-3x_coco.py')
    assert cmp.paper_result(coco, 'coco/bbox_mAP') == pytest.approx(0.465)

    with pytest.raises(cmp.ComparisonError,
                       match=r"--modes must be distinct modes out of "
                       r"\['cls', 'gap', 'lape', 'pvg', 'mpvg'\], got "
                       r"\['mpvg', 'vit'\]"):
        cmp.plan_runs([DEMO], str(tmp_path), modes=['mpvg', 'vit'])
    with pytest.raises(cmp.ComparisonError, match='distinct integers'):
        cmp.plan_runs([DEMO], str(tmp_path), seeds=[1, 1])
    with pytest.raises(cmp.ComparisonError, match='planned twice'):
        cmp.plan_runs([DEMO, DEMO], str(tmp_path))
    with pytest.raises(cmp.ComparisonError, match='letters, digits'):
        cmp.parse_variant(['a/b', 'x=1'])


def test_train_command_launchers(tmp_path):
    (run, ) = cmp.plan_runs([DEMO], str(tmp_path), seeds=[3], epochs=5)
    tools = osp.join(REPO_ROOT, 'tools')
    cmd = cmp.train_command(run, tools, resume=True, python='py')
    assert cmd[:5] == ['py', osp.join(tools, 'train.py'), DEMO, '--work-dir',
                       run.work_dir]
    assert cmd[-1] == '--resume' and 'randomness.seed=3' in cmd
    dist = cmp.train_command(run, tools, launcher='pytorch', gpus=4)
    assert dist[:4] == ['bash', osp.join(tools, 'dist_train.sh'), DEMO, '4']
    with pytest.raises(cmp.ComparisonError, match='needs --partition'):
        cmp.train_command(run, tools, launcher='slurm')
    slurm = cmp.train_command(run, tools, launcher='slurm', partition='p',
                              gpus=16)
    assert slurm[:6] == ['env', 'GPUS=16', 'GPUS_PER_NODE=8', 'bash',
                         osp.join(tools, 'slurm_train.sh'), 'p']
    tpl = cmp.train_command(run, tools, template='sbatch x {config} '
                            '{work_dir} {gpus} {args}')
    assert tpl[:2] == ['bash', '-c'] and tpl[2].startswith(
        f'sbatch x {DEMO} {run.work_dir} 1 --cfg-options ')


# ------------------------------------------------- the run queue, for real
FAKE_TRAIN = textwrap.dedent('''
    # Stands in for tools/train.py: writes what mmengine writes (one
    # attempt folder with vis_data/scalars.json, epoch checkpoints,
    # last_checkpoint) and prints mmengine-style log lines. Validation
    # value: 50 + 10 * seed + epoch. Stops with status 1 after epoch
    # $FAKE_STOP_EPOCH when the work dir is $FAKE_STOP_DIR.
    import json, os, os.path as osp, sys
    args = sys.argv[1:]
    wd = args[args.index('--work-dir') + 1]
    resume = '--resume' in args
    opts = dict(a.split('=', 1) for a in args if '=' in a)
    epochs, seed = int(opts['train_cfg.max_epochs']), int(
        opts['randomness.seed'])
    with open(os.environ['FAKE_CALLS'], 'a') as f:
        f.write(f'{wd} {int(resume)}\\n')
    start = 1
    if resume:
        last = open(osp.join(wd, 'last_checkpoint')).read()
        start = int(last.rsplit('_', 1)[1].split('.')[0]) + 1
    os.makedirs(wd, exist_ok=True)
    n = len([d for d in os.listdir(wd) if d.startswith('2026')])
    vis = osp.join(wd, f'2026010{n + 1}_000000', 'vis_data')
    os.makedirs(vis)
    stop = (os.environ.get('FAKE_STOP_DIR') == wd
            and int(os.environ['FAKE_STOP_EPOCH']))
    for e in range(start, epochs + 1):
        print(f'Epoch(train)  [{e}][1/2]  loss: 1.0', flush=True)
        print(f'Epoch(train)  [{e}][2/2]  loss: 0.9', flush=True)
        value = 50 + 10 * seed + e
        print(f'Epoch(val) [{e}][3/3]    accuracy/top1: {value:.4f}',
              flush=True)
        with open(osp.join(vis, 'scalars.json'), 'a') as f:
            f.write(json.dumps({'loss': 1.0, 'epoch': e, 'step': e}) + '\\n')
            f.write(json.dumps({'accuracy/top1': value, 'step': e}) + '\\n')
        open(osp.join(wd, f'epoch_{e}.pth'), 'w').close()
        with open(osp.join(wd, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(wd, f'epoch_{e}.pth'))
        if stop == e:
            sys.exit(1)
''')


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch):
    script = tmp_path / 'fake_train.py'
    script.write_text(FAKE_TRAIN)
    calls = tmp_path / 'calls.txt'
    monkeypatch.setenv('FAKE_CALLS', str(calls))

    def read_calls():
        if not calls.exists():
            return []
        lines = calls.read_text().split()
        return list(zip(lines[::2], map(int, lines[1::2])))

    template = (f'{sys.executable} {script} {{config}} --work-dir '
                '{work_dir} {args}')
    return template, read_calls


def test_execute_skips_finished_and_resumes_interrupted(
        tmp_path, monkeypatch, fake_trainer):
    template, calls = fake_trainer
    out = str(tmp_path / 'out')
    runs = cmp.plan_runs([DEMO], out, seeds=[0, 1], modes=['pvg', 'mpvg'],
                         epochs=4)
    tools = osp.join(REPO_ROOT, 'tools')
    interrupted = runs[2]  # pvg, seed 1
    monkeypatch.setenv('FAKE_STOP_DIR', interrupted.work_dir)
    monkeypatch.setenv('FAKE_STOP_EPOCH', '2')
    lines = []
    with pytest.raises(cmp.ComparisonError) as err:
        cmp.execute(runs, tools, 'accuracy/top1', template=template,
                    printer=lines.append)
    assert ('Run 3/4 (vit-demo-mpvg_1xb64_demo-digits.py mode=pvg seed=1) '
            'exited with status 1') in str(err.value)
    assert 'Rerunning the same command resumes it' in str(err.value)
    assert [c[1] for c in calls()] == [0, 0, 0]
    assert [cmp.run_state(r) for r in runs] == [
        'done', 'done', 'partial', 'new']
    assert any('run 1/4 pvg seed=0: epoch 4/4' in line for line in lines)

    monkeypatch.delenv('FAKE_STOP_DIR')
    lines.clear()
    records = cmp.execute(runs, tools, 'accuracy/top1', template=template,
                          printer=lines.append)
    # the finished runs were not launched again; the interrupted one resumed
    assert calls()[3:] == [(interrupted.work_dir, 1), (runs[3].work_dir, 0)]
    assert '2 of 4 runs already finished (kept); 2 to train.' in lines[0]
    assert any('run 1/2' in line and '(resuming)' in line for line in lines)
    assert any('run 2/2 mpvg seed=1: validation accuracy/top1 = 63' in line
               for line in lines)
    assert [r['state'] for r in records] == ['done', 'done', 'partial', 'new']
    resumed = records[2]
    assert resumed['resumed'] and resumed['history'] == [
        [1, 61.0], [2, 62.0], [3, 63.0], [4, 64.0]]  # both attempts
    assert (resumed['final'], resumed['best'], resumed['best_step']) == (
        64.0, 64.0, 4)
    with open(osp.join(interrupted.work_dir, cmp.DONE_MARKER)) as f:
        assert json.load(f)['final'] == 64.0

    # a third call launches nothing
    n = len(calls())
    again = cmp.execute(runs, tools, 'accuracy/top1', template=template,
                        printer=lines.append)
    assert len(calls()) == n and [r['final'] for r in again] == [
        54.0, 54.0, 64.0, 64.0]

    # the same out dir with another budget is refused, not mixed
    other = cmp.plan_runs([DEMO], out, seeds=[0], modes=['pvg'], epochs=5)
    with pytest.raises(cmp.ComparisonError,
                       match='holds a run with other settings'):
        cmp.execute(other, tools, 'accuracy/top1', template=template)

    # results: written once, replaced only with force
    summary = cmp.aggregate(again)
    paths = cmp.write_results(summary, again, out, budget='4 epochs')
    assert [osp.basename(p) for p in paths] == list(cmp.RESULT_FILES)
    assert os.path.getsize(paths[2]) > 0
    with open(paths[1]) as f:
        saved = json.load(f)
    assert saved['groups'][0]['arms'][1]['final']['mean'] == 59.0
    assert len(saved['runs']) == 4
    with pytest.raises(cmp.ComparisonError,
                       match='already exist; pass --force to overwrite'):
        cmp.write_results(summary, again, out)
    cmp.write_results(summary, again, out, force=True)


def test_metrics_from_the_text_log_without_scalars(tmp_path):
    attempt = tmp_path / '20260101_000000'
    attempt.mkdir()
    (attempt / '20260101_000000.log').write_text(
        'x - mmengine - INFO - Epoch(val) [1][3/3]    accuracy/top1: 40.5000'
        '  data_time: 0.01\n'
        'x - mmengine - INFO - Epoch(val) [2][3/3]    accuracy/top1: 45.2500'
        '\n')
    got = cmp.collect_metrics(str(tmp_path), 'accuracy/top1')
    assert got['history'] == [[1, 40.5], [2, 45.25]]
    with pytest.raises(cmp.ComparisonError,
                       match=r"has no validation result for 'mIoU'"):
        cmp.collect_metrics(str(tmp_path), 'mIoU')
