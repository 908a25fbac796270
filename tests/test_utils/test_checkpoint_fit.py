"""mmpvg.utils.checkpoint_fit: a checkpoint that does not fit its model is
refused with the message a user reads; what may be absent is listed."""
import logging
import types

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule

import mmpvg  # noqa: F401  (registers the checked Pretrained initialiser)
from mmpvg.converters import convert_mpvg_to_timm
from mmpvg.models import MPVGViT, MPVGViTAdapter
from mmpvg.testing.references import ARCH, IMG, PATCH, classifier
from mmpvg.utils.checkpoint_fit import (CheckpointFitHook,
                                        CheckpointMismatchError, check_fit)


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def log():
    capture = _Capture()
    logger = MMLogger.get_current_instance()
    logger.addHandler(capture)
    yield capture.messages
    logger.removeHandler(capture)


def _save(tmp_path, name, state_dict, key='state_dict'):
    path = str(tmp_path / name)
    torch.save({key: state_dict}, path)
    return path


def _backbone(pe_mode, checkpoint=None, prefix='backbone.', **kwargs):
    init_cfg = None
    if checkpoint:
        init_cfg = dict(type='Pretrained', checkpoint=checkpoint,
                        prefix=prefix)
    return MPVGViT(arch=ARCH, img_size=IMG, patch_size=PATCH,
                   pe_mode=pe_mode, init_cfg=init_cfg, **kwargs)


def _same(model, state_dict, prefix='backbone.'):
    own = model.state_dict()
    return all(torch.equal(own[k[len(prefix):]], v)
               for k, v in state_dict.items() if k.startswith(prefix)
               and k[len(prefix):] in own)


# ---------------------------------------------------------------------- #
# init_cfg=dict(type='Pretrained', ...)
# ---------------------------------------------------------------------- #
def test_pretrained_timm_file_is_refused_with_its_converter(tmp_path):
    timm = convert_mpvg_to_timm(classifier('cls', seed=0).state_dict())
    path = _save(tmp_path, 'deit.pth', timm, key='model')
    with pytest.raises(CheckpointMismatchError) as info:
        _backbone('cls', path).init_weights()
    assert str(info.value) == (
        f"Checkpoint '{path}' has no key starting with init_cfg "
        "prefix='backbone.': its keys start with [model.]. It is a "
        'timm/DeiT VisionTransformer checkpoint; convert it with '
        'tools/model_converters/deit2mpvg.py.')


def test_pretrained_mpvg_checkpoint_into_pvg_is_refused(tmp_path):
    path = _save(tmp_path, 'mpvg.pth',
                 classifier('mpvg', seed=0).state_dict())
    with pytest.raises(CheckpointMismatchError) as info:
        _backbone('pvg', path).init_weights()
    assert str(info.value) == (
        f"Checkpoint '{path}' does not fit MPVGViT pe_mode='pvg': keys in "
        "'the model': 2 unexpected [pe.last_norm.bias, pe.last_norm.weight]"
        '. It is an mmpvg checkpoint, but of another model. Its backbone '
        "reads as pe_mode='mpvg' with 3 blocks of 32 channels; check the "
        'config it was trained with.')


def test_pretrained_without_pe_layernorms_is_refused(tmp_path):
    state = {k: v for k, v in classifier('mpvg', seed=0).state_dict().items()
             if '.pe.norms.' not in k}
    path = _save(tmp_path, 'no_norms.pth', state)
    with pytest.raises(CheckpointMismatchError,
                       match=r"does not fit MPVGViT pe_mode='mpvg': keys in "
                       r"'the model': 4 missing \[pe\.norms\.1\.bias, "
                       r'pe\.norms\.1\.weight, pe\.norms\.2\.bias, '
                       r'pe\.norms\.2\.weight\]\.'):
        _backbone('mpvg', path).init_weights()


def test_pretrained_whole_classifier_without_prefix_says_so(tmp_path):
    path = _save(tmp_path, 'mpvg.pth',
                 classifier('mpvg', seed=0).state_dict())
    with pytest.raises(CheckpointMismatchError) as info:
        _backbone('mpvg', path, prefix=None).init_weights()
    msg = str(info.value)
    assert msg.startswith(f"Checkpoint '{path}' does not fit MPVGViT "
                          "pe_mode='mpvg': keys in 'the model': ")
    assert '[backbone.blocks.0.attn.proj.bias, ' in msg
    assert msg.endswith(
        "Its keys start with 'backbone.': to initialise a backbone, use "
        "init_cfg=dict(type='Pretrained', checkpoint=..., "
        "prefix='backbone.').")


def test_pretrained_gap_model_from_class_token_checkpoint(tmp_path, log):
    src = classifier('lape', seed=0).state_dict()
    path = _save(tmp_path, 'lape.pth', src)
    model = _backbone('pvg', path, pe_first_block=True)
    model.init_weights()
    assert _same(model, {k: v for k, v in src.items()
                         if 'pos_embed' not in k})
    assert any('backbone.cls_token' not in m and 'cls_token: dropped' in m
               for m in log)
    assert not any('missing keys' in m for m in log)


def test_pretrained_adapter_lists_its_own_modules(tmp_path, log):
    src = classifier('mpvg', seed=0).state_dict()
    path = _save(tmp_path, 'mpvg.pth', src)
    adapter = MPVGViTAdapter(
        arch=ARCH, img_size=IMG, patch_size=PATCH, pe_mode='mpvg',
        window_size=0, interaction_indexes=[[0, 1], [2, 2]],
        conv_inplane=8, deform_num_heads=2, vit_feature_source='final',
        init_cfg=dict(type='Pretrained', checkpoint=path,
                      prefix='backbone.'))
    adapter.init_weights()
    assert _same(adapter.vit, src)
    header = [m for m in log if 'fits the backbone of' in m]
    assert header == [
        f"Checkpoint '{path}' fits the backbone of MPVGViTAdapter with "
        "MPVGViT pe_mode='mpvg'; outside it (expected when initialising a "
        'part of a model), these keys did not load and keep their '
        'configured init:']
    missing = [m for m in log if m.startswith('missing keys in source')]
    assert len(missing) == 1
    listed = set(missing[0].split(': ', 1)[1].split(', '))
    expected = {k for k in adapter.state_dict()
                if not k.startswith('vit.') and 'num_batches' not in k}
    assert listed == expected and 'level_embed' in listed


def test_non_mmpvg_modules_load_as_mmengine_loads_them(tmp_path):
    class Plain(BaseModule):
        def __init__(self, init_cfg=None):
            super().__init__(init_cfg)
            self.fc = torch.nn.Linear(2, 2)

    path = _save(tmp_path, 'other.pth', {'other.weight': torch.ones(1)})
    model = Plain(init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()  # mmengine only warns, as before


# ---------------------------------------------------------------------- #
# check_fit and the Runner hook (load_from, --resume, tools/test.py)
# ---------------------------------------------------------------------- #
def test_exact_fit_refuses_a_missing_head():
    state = {k: v for k, v in classifier('cls', seed=0).state_dict().items()
             if not k.startswith('head.')}
    with pytest.raises(CheckpointMismatchError,
                       match=r"'x\.pth' does not fit ImageClassifier with "
                       r"MPVGViT pe_mode='cls': keys: 2 missing "
                       r'\[head\.fc\.bias, head\.fc\.weight\]\. It is an '
                       'mmpvg checkpoint'):
        check_fit(classifier('cls'), state, 'x.pth', exact=True)


def test_fine_tuning_lists_another_head_and_loads_the_backbone(log):
    src = classifier('mpvg', seed=0).state_dict()
    src['head.fc.weight'] = torch.zeros(3, src['head.fc.weight'].shape[1])
    src['head.fc.bias'] = torch.zeros(3)
    model = classifier('mpvg')
    result = check_fit(model, src, 'x.pth', exact=False)
    assert result['mismatched'] == ['head.fc.bias', 'head.fc.weight']
    assert _same(model.backbone, src)
    assert 'keys of another shape, not loaded: head.fc.bias, ' \
        'head.fc.weight' in log
    with pytest.raises(CheckpointMismatchError, match='2 of another shape'):
        check_fit(model, src, 'x.pth', exact=True)


def test_fine_tuning_refuses_a_backbone_of_another_width():
    src = classifier('mpvg', seed=0).state_dict()
    src['backbone.norm.weight'] = torch.ones(7)
    with pytest.raises(CheckpointMismatchError,
                       match=r"keys in 'backbone\.': 1 of another shape "
                       r'\[backbone\.norm\.weight\]'):
        check_fit(classifier('mpvg'), src, 'x.pth', exact=False)


def test_hook_is_exact_when_resuming_and_for_testing():
    src = classifier('mpvg', seed=0).state_dict()
    src['head.fc.weight'] = torch.zeros(3, src['head.fc.weight'].shape[1])
    checkpoint = {'state_dict': {'module.' + k: v for k, v in src.items()}}
    runner = types.SimpleNamespace(model=classifier('mpvg'), _resume=False)
    CheckpointFitHook(exact=False).after_load_checkpoint(runner, checkpoint)
    runner._resume = True
    hook = CheckpointFitHook(exact=False)
    with pytest.raises(CheckpointMismatchError, match='1 of another shape'):
        hook.after_load_checkpoint(runner, checkpoint)
    runner._resume = False
    with pytest.raises(CheckpointMismatchError, match='1 of another shape'):
        CheckpointFitHook(exact=True).after_load_checkpoint(runner,
                                                            checkpoint)
