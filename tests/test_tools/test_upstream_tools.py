"""OpenMMLab's own tools (mmpretrain, mmdet, mmseg: .mim/tools) and mim on
the project's demo configs, as a user runs them (README "mim and the
upstream tools").

Each task trains once, briefly (a few iterations on a few images, with the
upstream train.py), and the other tools reuse that run: its checkpoint
(test.py, confusion_matrix, benchmark) and its log (analyze_logs). mim runs
on a wheel of this checkout installed into a temporary directory, as
`pip install .` installs it.
"""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmpvg.testing import REPO_ROOT, TOOL_TIMEOUT, run_tool

CLS_CFG = 'configs/demo/vit-demo-mpvg_1xb64_demo-digits.py'
DET_CFG = 'configs/demo/mask-rcnn_vit-demo-mpvg_sfp_1xb8-8e_demo-shapes.py'
SEG_CFG = ('configs/demo/'
           'upernet_vit-demo-mpvg_mln_1xb8-600_demo-shapes-64x64.py')
ITERS = 2  # segmentation iterations; the others run one epoch of 2 batches


def upstream(package, tool):
    """The path of an upstream tool as installed (``<pkg>/.mim/tools``)."""
    import importlib
    root = osp.dirname(importlib.import_module(package).__file__)
    path = osp.join(root, '.mim', 'tools', tool)
    assert osp.isfile(path), path
    return path


def loaders(data_root, train=4, val=2, batch=2):
    """--cfg-options: data under ``data_root``, ``train``/``val`` images,
    no worker processes, no pretrained backbone, a log line per iteration."""
    opts = ['model.backbone.init_cfg=None', 'default_hooks.logger.interval=1']
    for loader, n in (('train_dataloader', train), ('val_dataloader', val),
                      ('test_dataloader', val)):
        opts += [f'{loader}.dataset.data_root={data_root}',
                 f'{loader}.dataset.indices={n}',
                 f'{loader}.batch_size={batch if loader[1] == "r" else 1}',
                 f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return opts


def cls_options(root):
    return ['--cfg-options', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1', 'param_scheduler.0.end=1',
            'param_scheduler.1.begin=0', 'param_scheduler.1.end=1',
            'default_hooks.checkpoint.interval=1'] + loaders(root)


def det_options(root):
    return ['--cfg-options', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1', 'param_scheduler.1.end=1',
            'default_hooks.checkpoint.interval=1'] + loaders(root) + [
                f'{e}.ann_file={root}/annotations/instances_val.json'
                for e in ('val_evaluator', 'test_evaluator')]


def seg_options(root):
    return ['--cfg-options', f'train_cfg.max_iters={ITERS}',
            f'train_cfg.val_interval={ITERS}', 'param_scheduler.0.end=1',
            'param_scheduler.1.begin=1', f'param_scheduler.1.end={ITERS}',
            f'default_hooks.checkpoint.interval={ITERS}'] + loaders(root)


def output(proc):
    return proc.stdout + proc.stderr


def scalars_json(work_dir):
    """The json log the run wrote (``<timestamp>/vis_data/scalars.json``)."""
    found = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(found) == 1, found
    return found[0]


def images_in(folder):
    return [f for f in os.listdir(folder) if f.endswith(('.png', '.jpg'))]


@pytest.fixture(scope='module')
def shapes_coco(tmp_path_factory):
    from mmpvg.demo import make_shapes_coco
    root = str(tmp_path_factory.mktemp('data') / 'demo_shapes_coco')
    make_shapes_coco(root, num_train=4, num_val=2)
    return root


@pytest.fixture(scope='module')
def shapes_ade(tmp_path_factory):
    from mmpvg.demo import make_shapes_ade
    root = str(tmp_path_factory.mktemp('data') / 'demo_shapes_ade')
    make_shapes_ade(root, num_train=4, num_val=2)
    return root


def train(package, cfg, options, work_dir):
    """A short run of ``package``'s own train.py; returns its work dir."""
    run_tool([upstream(package, 'train.py'), cfg, '--work-dir', work_dir] +
             options)
    return work_dir


@pytest.fixture(scope='module')
def cls_run(tmp_path_factory, demo_digits):
    work = str(tmp_path_factory.mktemp('cls'))
    return train('mmpretrain', CLS_CFG, cls_options(demo_digits), work)


@pytest.fixture(scope='module')
def det_run(tmp_path_factory, shapes_coco):
    work = str(tmp_path_factory.mktemp('det'))
    return train('mmdet', DET_CFG, det_options(shapes_coco), work)


@pytest.fixture(scope='module')
def seg_run(tmp_path_factory, shapes_ade):
    work = str(tmp_path_factory.mktemp('seg'))
    return train('mmseg', SEG_CFG, seg_options(shapes_ade), work)


# ---- train.py / test.py of each package --------------------------------

def test_mmpretrain_train_and_test(cls_run, demo_digits, tmp_path):
    ckpt = osp.join(cls_run, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    proc = run_tool([upstream('mmpretrain', 'test.py'), CLS_CFG, ckpt,
                     '--work-dir', str(tmp_path)] + cls_options(demo_digits))
    assert 'accuracy/top1' in output(proc)


def test_mmdet_train_and_test(det_run, shapes_coco, tmp_path):
    ckpt = osp.join(det_run, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    proc = run_tool([upstream('mmdet', 'test.py'), DET_CFG, ckpt,
                     '--work-dir', str(tmp_path)] + det_options(shapes_coco))
    assert 'coco/bbox_mAP' in output(proc)
    assert 'coco/segm_mAP' in output(proc)


def test_mmseg_train_and_test(seg_run, shapes_ade, tmp_path):
    # mmseg's confusion_matrix.py is not run: on a reduce_zero_label dataset
    # (ADE20K, the demo) mmseg 1.2.2 reduces the labels twice and reads
    # test.py's predictions in the unreduced space (README)
    ckpt = osp.join(seg_run, f'iter_{ITERS}.pth')
    assert osp.isfile(ckpt)
    preds = str(tmp_path / 'preds')
    proc = run_tool([upstream('mmseg', 'test.py'), SEG_CFG, ckpt,
                     '--work-dir', str(tmp_path), '--out', preds] +
                    seg_options(shapes_ade))
    assert 'mIoU' in output(proc)
    assert len(images_in(preds)) == 2


def test_mmpretrain_confusion_matrix(cls_run, demo_digits, tmp_path):
    out = str(tmp_path / 'cm.pkl')
    run_tool([upstream('mmpretrain', 'analysis_tools/confusion_matrix.py'),
              CLS_CFG, osp.join(cls_run, 'epoch_1.pth'), '--out', out,
              '--show-path', str(tmp_path / 'cm.png')] +
             cls_options(demo_digits))
    import mmengine
    cm = mmengine.load(out)
    assert tuple(cm.shape) == (10, 10) and int(cm.sum()) == 2
    assert osp.isfile(str(tmp_path / 'cm.png'))


def test_mmdet_benchmark(shapes_coco):
    # the data loader (psutil reads the memory); '--task inference' moves the
    # model to CUDA unconditionally, so it needs a GPU
    proc = run_tool([upstream('mmdet', 'analysis_tools/benchmark.py'),
                     DET_CFG, '--task', 'dataloader', '--max-iter', '2',
                     '--num-warmup', '1', '--log-interval', '1'] +
                    det_options(shapes_coco))
    assert 'fps' in output(proc).lower()


# ---- analyze_logs on the runs' json logs --------------------------------

def test_analyze_logs(cls_run, det_run, seg_run, tmp_path):
    run_tool([upstream('mmpretrain', 'analysis_tools/analyze_logs.py'),
              'plot_curve', scalars_json(cls_run), '--keys', 'loss',
              '--out', str(tmp_path / 'cls.png')])
    run_tool([upstream('mmdet', 'analysis_tools/analyze_logs.py'),
              'plot_curve', scalars_json(det_run), '--keys', 'loss',
              '--out', str(tmp_path / 'det.png')])
    run_tool([upstream('mmseg', 'analysis_tools/analyze_logs.py'),
              scalars_json(seg_run), '--keys', 'loss',
              '--out', str(tmp_path / 'seg.png')])
    for name in ('cls', 'det', 'seg'):
        assert osp.getsize(str(tmp_path / f'{name}.png')) > 0


# ---- browse_dataset and get_flops on the configs ------------------------

def test_browse_dataset(demo_digits, shapes_coco, shapes_ade, tmp_path):
    out = str(tmp_path / 'cls')
    # 'pipeline' mode draws every transform (matplotlib's adjust_bbox)
    run_tool([upstream('mmpretrain', 'visualization/browse_dataset.py'),
              CLS_CFG, '-o', out, '-n', '1', '-m', 'pipeline'] +
             cls_options(demo_digits))
    assert len(images_in(out)) == 1
    out = str(tmp_path / 'det')
    run_tool([upstream('mmdet', 'analysis_tools/browse_dataset.py'), DET_CFG,
              '--output-dir', out, '--not-show'] + det_options(shapes_coco))
    assert len(images_in(out)) == 4
    out = str(tmp_path / 'seg')
    run_tool([upstream('mmseg', 'analysis_tools/browse_dataset.py'), SEG_CFG,
              '--output-dir', out, '--not-show'] + seg_options(shapes_ade))
    assert len(images_in(out)) == 4


def test_get_flops(shapes_coco):
    proc = run_tool([upstream('mmpretrain', 'analysis_tools/get_flops.py'),
                     CLS_CFG, '--shape', '32'])
    assert 'Flops' in output(proc)
    proc = run_tool([upstream('mmdet', 'analysis_tools/get_flops.py'),
                     DET_CFG, '--num-images', '1'] + det_options(shapes_coco))
    assert 'Flops' in output(proc)
    # mmseg 1.2.2's get_flops.py passes both input_shape and inputs, which
    # mmengine 0.10.7 refuses for every config (README)


# ---- mim on an installed wheel ------------------------------------------

@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """This checkout built and installed (not editable) into a directory
    that comes first on PYTHONPATH, so mim finds its metadata there."""
    pytest.importorskip('mim')
    target = str(tmp_path_factory.mktemp('site'))
    subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
         '--no-build-isolation', '--disable-pip-version-check',
         '--target', target, REPO_ROOT],
        check=True, capture_output=True, timeout=TOOL_TIMEOUT)
    return target


def mim(args, site, cwd):
    env = dict(os.environ, PYTHONPATH=site, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-m', 'mim'] + args, cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=TOOL_TIMEOUT)
    assert proc.returncode == 0, output(proc)[-6000:]
    return proc


def test_wheel_ships_configs_tools_and_model_index(installed):
    mim_dir = osp.join(installed, 'mmpvg', '.mim')
    assert osp.isfile(osp.join(mim_dir, 'model-index.yml'))
    assert osp.isfile(osp.join(mim_dir, 'tools', 'train.py'))
    assert osp.isfile(osp.join(mim_dir, 'configs', 'demo', 'metafile.yml'))
    for rel in glob.glob('configs/**/*.py', root_dir=REPO_ROOT,
                         recursive=True):
        assert osp.isfile(osp.join(mim_dir, rel)), rel


def test_mim_train_test_and_search(installed, demo_digits, tmp_path):
    from mmengine.utils import mkdir_or_exist
    cwd = str(tmp_path)  # not the checkout: configs/tools from the wheel
    mkdir_or_exist(osp.join(cwd, 'work'))
    name = osp.basename(CLS_CFG)
    proc = mim(['train', 'mmpvg', name, '--work-dir', 'work'] +
               cls_options(demo_digits), installed, cwd)
    # mim ran the packaged tool on the packaged config
    assert osp.join(installed, 'mmpvg', '.mim', 'configs', 'demo',
                    name) in output(proc)
    ckpt = osp.join(cwd, 'work', 'epoch_1.pth')
    assert osp.isfile(ckpt)
    proc = mim(['test', 'mmpvg', name, '--checkpoint', ckpt, '--work-dir',
                'test'] + cls_options(demo_digits), installed, cwd)
    assert 'accuracy/top1' in output(proc)
    proc = mim(['search', 'mmpvg', '--valid-config'], installed, cwd)
    assert 'deit-tiny-mpvg_8xb128_in1k' in proc.stdout
    assert name[:-len('.py')] in proc.stdout
