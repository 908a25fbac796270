"""tools/train.py and tools/test.py on the demo data (resume:
test_resume.py; dist_train.sh: test_dist_train.py).

Real Runner, real data loading, real checkpoints written and read back
under torch >= 2.6 (weights_only loading).
"""
import os.path as osp
import pickle
import re

import torch

from mmpvg.testing import REPO_ROOT, run_tool

DEMO_CFG = 'configs/demo/vit-demo-mpvg_1xb64_demo-digits.py'


def demo_options(data_root, epochs, indices=None):
    opts = [f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=1',
            'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=5']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={data_root}',
                 f'{loader}.num_workers=0']
    if indices:
        opts.append(f'train_dataloader.dataset.indices={indices}')
    return ['--cfg-options'] + opts


def top1_of(log):
    found = re.findall(r'accuracy/top1: ([0-9.]+)', log)
    assert found, log[-3000:]
    return float(found[-1])


def test_train_then_test_learns(tmp_path, demo_digits):
    work = str(tmp_path / 'work')
    run_tool(['tools/train.py', DEMO_CFG, '--work-dir', work] +
             demo_options(demo_digits, epochs=8))
    ckpt = osp.join(work, 'epoch_8.pth')
    assert osp.isfile(ckpt)
    proc = run_tool(['tools/test.py', DEMO_CFG, ckpt, '--work-dir',
                     str(tmp_path / 'test'), '--out',
                     str(tmp_path / 'preds.pkl')] +
                    demo_options(demo_digits, epochs=8))
    top1 = top1_of(proc.stdout + proc.stderr)
    # 10 classes: chance is 10%. Eight short epochs must clearly beat it.
    assert top1 > 50.0, top1
    assert osp.isfile(tmp_path / 'preds.pkl')

    # An untrained model of the same config stays near chance. This run
    # gives test_evaluator as a list (as mmengine allows), with --out.
    untrained = osp.join(str(tmp_path), 'untrained.pth')
    _save_untrained(untrained)
    list_cfg = tmp_path / 'list_evaluator.py'
    list_cfg.write_text(
        f'_base_ = [{osp.join(REPO_ROOT, DEMO_CFG)!r}]\n'
        "test_evaluator = [dict(type='Accuracy', topk=(1, )),\n"
        "                  dict(type='SingleLabelMetric')]\n")
    proc = run_tool(['tools/test.py', str(list_cfg), untrained, '--work-dir',
                     str(tmp_path / 'test0'), '--out',
                     str(tmp_path / 'preds0.pkl')] +
                    demo_options(demo_digits, epochs=8))
    log = proc.stdout + proc.stderr
    assert top1_of(log) < 30.0
    assert 'single-label/f1-score' in log  # the second metric ran too
    with open(tmp_path / 'preds0.pkl', 'rb') as f:
        preds = pickle.load(f)  # written by this test's own run
    assert len(preds) > 0 and 'pred_label' in preds[0]


def _save_untrained(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(REPO_ROOT, DEMO_CFG))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, path)


def test_bad_command_lines_fail_clearly(tmp_path, demo_digits):
    proc = run_tool(['tools/train.py', 'configs/demo/nope.py'], check=False)
    assert proc.returncode != 0
    assert "Config file 'configs/demo/nope.py' does not exist" in proc.stderr

    no_scope = tmp_path / 'no_scope.py'
    no_scope.write_text('model = dict(type="ImageClassifier")\n')
    proc = run_tool(['tools/train.py', str(no_scope)], check=False)
    assert proc.returncode != 0
    assert 'default_scope=None is not supported' in proc.stderr

    proc = run_tool(['tools/test.py', DEMO_CFG, str(tmp_path / 'x.pth')],
                    check=False)
    assert proc.returncode != 0
    assert 'x.pth' in proc.stderr and 'does not exist' in proc.stderr

    proc = run_tool(['tools/dist_train.sh', DEMO_CFG], check=False)
    assert proc.returncode == 2 and 'usage' in proc.stderr
    for script, args in (('dist_train.sh', [DEMO_CFG, '0']),
                         ('dist_test.sh', [DEMO_CFG, 'x.pth', 'two'])):
        proc = run_tool([f'tools/{script}'] + args, check=False)
        assert proc.returncode == 2, proc.stderr
        assert 'NUM_PROCS must be a whole number >= 1' in proc.stderr
