"""Every tool that reads a checkpoint, run as a user runs it: a code-running
pickle is refused with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set, and a
checkpoint that does not fit is refused with a message naming the file,
the keys and the converter."""
import os

import pytest
import torch

from mmpvg.converters import convert_mpvg_to_timm
from mmpvg.testing import run_tool, save_untrained

CLS_CFG = 'configs/demo/vit-demo-{}_1xb64_demo-digits.py'
ENV = {'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD': '1'}


class _WritesMarker:

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpts')
    paths = {}
    for mode in ('mpvg', 'cls'):
        paths[mode] = str(root / f'{mode}.pth')
        save_untrained(CLS_CFG.format(mode), paths[mode])
    state = torch.load(paths['cls'])['state_dict']
    paths['timm'] = str(root / 'deit.pth')
    torch.save({'model': convert_mpvg_to_timm(state)}, paths['timm'])
    # a valid MPVG checkpoint, plus a pickle that writes a marker file
    paths['marker'] = root / 'PWNED'
    evil = torch.load(paths['mpvg'])
    evil['meta'] = {'x': _WritesMarker(paths['marker'])}
    paths['evil'] = str(root / 'evil.pth')
    torch.save(evil, paths['evil'])
    return paths


def _data(root):
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={root}',
                 f'{loader}.num_workers=0']
    return opts


REFUSED = ("holds objects other than tensors and the allowlisted types, and "
           'mmpvg does not unpickle arbitrary objects (weights_only=True); '
           'refused: ')


def _refused(proc, path, marker):
    assert proc.returncode != 0
    assert f"Checkpoint '{path}' {REFUSED}" in proc.stderr, \
        proc.stderr[-3000:]
    assert 'posix.system' in proc.stderr
    assert not marker.exists()


def test_test_py_refuses_code(tmp_path, ckpts, demo_digits):
    proc = run_tool(['tools/test.py', CLS_CFG.format('mpvg'), ckpts['evil'],
                     '--work-dir', str(tmp_path), '--cfg-options']
                    + _data(demo_digits), env=ENV, check=False)
    _refused(proc, ckpts['evil'], ckpts['marker'])


def test_train_resume_and_init_cfg_refuse_code(tmp_path, ckpts, demo_digits):
    proc = run_tool(['tools/train.py', CLS_CFG.format('mpvg'), '--resume',
                     ckpts['evil'], '--work-dir', str(tmp_path / 'r'),
                     '--cfg-options', 'train_cfg.max_epochs=1']
                    + _data(demo_digits), env=ENV, check=False)
    _refused(proc, ckpts['evil'], ckpts['marker'])
    proc = run_tool(['tools/train.py', CLS_CFG.format('mpvg'), '--work-dir',
                     str(tmp_path / 'i'), '--cfg-options',
                     'train_cfg.max_epochs=1',
                     'model.backbone.init_cfg.type=Pretrained',
                     f'model.backbone.init_cfg.checkpoint={ckpts["evil"]}',
                     'model.backbone.init_cfg.prefix=backbone.']
                    + _data(demo_digits), env=ENV, check=False)
    _refused(proc, ckpts['evil'], ckpts['marker'])


def test_fold_analysis_and_converters_refuse_code(tmp_path, ckpts):
    cfg = CLS_CFG.format('mpvg')
    (tmp_path / 'imgs').mkdir()
    from PIL import Image
    Image.new('RGB', (32, 32)).save(tmp_path / 'imgs' / 'a.png')
    for args in (
            ['tools/model_converters/fold_last_ln_pe.py', cfg,
             ckpts['evil'], str(tmp_path / 'folded.pth')],
            ['tools/analysis_tools/analyze_pe.py', cfg, ckpts['evil'],
             '--img-dir', str(tmp_path / 'imgs'), '--out-dir',
             str(tmp_path / 'pe')],
            ['tools/model_converters/mpvg2backbone.py', ckpts['evil'],
             str(tmp_path / 'backbone.pth')],
            ['tools/model_converters/deit2mpvg.py', ckpts['evil'],
             str(tmp_path / 'deit.pth')]):
        proc = run_tool(args, env=ENV, check=False)
        _refused(proc, ckpts['evil'], ckpts['marker'])
    assert not (tmp_path / 'folded.pth').exists()


def test_test_py_refuses_a_timm_checkpoint(tmp_path, ckpts, demo_digits):
    proc = run_tool(['tools/test.py', CLS_CFG.format('cls'), ckpts['timm'],
                     '--work-dir', str(tmp_path), '--cfg-options']
                    + _data(demo_digits), check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        'test.py: error: Checkpoint '
        f"'{ckpts['timm']}' does not fit ImageClassifier with MPVGViT "
        "pe_mode='cls': keys: 80 missing [backbone.blocks.0.attn.proj.bias, ")
    assert last.endswith(
        '1 unexpected [model]. It is a timm/DeiT VisionTransformer '
        'checkpoint; convert it with tools/model_converters/deit2mpvg.py.')
    assert 'accuracy/top1' not in proc.stdout + proc.stderr


def test_load_from_of_another_mode_is_refused(tmp_path, ckpts, demo_digits):
    proc = run_tool(['tools/train.py', CLS_CFG.format('pvg'), '--work-dir',
                     str(tmp_path), '--cfg-options', 'train_cfg.max_epochs=1',
                     f'load_from={ckpts["mpvg"]}'] + _data(demo_digits),
                    check=False)
    assert proc.returncode != 0
    assert (f"Checkpoint '{ckpts['mpvg']}' does not fit ImageClassifier with "
            "MPVGViT pe_mode='pvg': keys in 'backbone.': 2 unexpected "
            '[backbone.pe.last_norm.bias, backbone.pe.last_norm.weight]. It '
            "is an mmpvg checkpoint, but of another model. Its backbone reads "
            "as pe_mode='mpvg'") in proc.stderr, proc.stderr[-3000:]
    assert not any(name.endswith('.pth') for name in os.listdir(tmp_path))
