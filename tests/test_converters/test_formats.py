"""mmpvg.converters.formats: telling the checkpoint formats apart, from the
state dicts of the real upstream models (timm, mmpretrain, mmseg) and of
every mmpvg family."""
import pytest
import torch
from mmpretrain.models import VisionTransformer as MMPretrainViT

import mmpvg  # noqa: F401
from mmpvg.converters.formats import (FORMATS, converter_for,
                                      describe_format, detect_format)
from mmpvg.testing import REPO_ROOT
from mmpvg.testing.references import (LaPEReference, classifier,
                                      timm_kwargs, timm_vit)


def _prefixed(state_dict, prefix):
    return {prefix + k: v for k, v in state_dict.items()}


@pytest.mark.parametrize('pe_mode', ['cls', 'gap', 'lape', 'pvg', 'mpvg'])
def test_mmpvg_classifiers(pe_mode):
    state = classifier(pe_mode).state_dict()
    assert detect_format(state) == 'mmpvg'
    # a bare backbone, and one saved inside DistributedDataParallel
    backbone = {k[len('backbone.'):]: v for k, v in state.items()
                if k.startswith('backbone.')}
    assert detect_format(backbone) == 'mmpvg'
    assert detect_format(_prefixed(state, 'module.')) == 'mmpvg'


def test_timm_and_lape():
    assert detect_format(timm_vit().state_dict()) == 'timm'
    assert detect_format(timm_vit(num_classes=0).state_dict()) == 'timm'
    lape = LaPEReference(**timm_kwargs()).state_dict()
    assert detect_format(lape) == 'lape'
    assert detect_format(_prefixed(lape, 'module.')) == 'lape'


def test_mmpretrain_vit():
    vit = MMPretrainViT(arch='deit-tiny', img_size=32, patch_size=16)
    assert detect_format(vit.state_dict()) == 'mmpretrain'
    assert detect_format(_prefixed(vit.state_dict(), 'backbone.')) \
        == 'mmpretrain'


def test_mmseg_vit():
    from mmseg.models.backbones import VisionTransformer as MMSegViT
    vit = MMSegViT(img_size=32, patch_size=16, embed_dims=32, num_layers=2,
                   num_heads=2, mlp_ratio=2)
    assert detect_format(vit.state_dict()) == 'mmseg'
    assert detect_format(_prefixed(vit.state_dict(), 'backbone.')) == 'mmseg'


@pytest.mark.parametrize('state', [
    {}, {'weight': torch.zeros(1)},
    {'conv1.weight': torch.zeros(1), 'fc.weight': torch.zeros(1)},
    # a torchvision ResNet's names are none of the formats
    {'layer1.0.conv1.weight': torch.zeros(1), 'fc.bias': torch.zeros(1)},
])
def test_unknown_is_none(state):
    assert detect_format(state) is None
    assert 'no format mmpvg knows' in describe_format(None)


def test_converter_for_every_foreign_format_exists():
    import os.path as osp
    assert converter_for('mmpvg') is None and converter_for(None) is None
    assert converter_for('timm').endswith('deit2mpvg.py')
    assert converter_for('lape').endswith('lape2mpvg.py')
    assert converter_for('mmpretrain') == converter_for('mmseg') \
        == 'tools/model_converters/mmpretrain2mpvg.py'
    for fmt in FORMATS:
        if converter_for(fmt) and 'mmpretrain2mpvg' not in converter_for(fmt):
            assert osp.isfile(osp.join(REPO_ROOT, converter_for(fmt)))
    assert describe_format('timm') == (
        'It is a timm/DeiT VisionTransformer checkpoint; convert it with '
        'tools/model_converters/deit2mpvg.py.')
    with pytest.raises(ValueError, match="Unknown checkpoint format 'onnx'"):
        converter_for('onnx')
