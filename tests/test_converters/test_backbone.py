"""mmpvg.converters.backbone: a classifier checkpoint -> a detection /
segmentation backbone (keys moved to another prefix, PE resized to another
token grid), checked by loading it strictly and comparing outputs."""
import pytest
import torch
import torch.nn as nn
from mmpretrain.models.utils import resize_pos_embed

import mmpvg  # noqa: F401
from mmpvg.converters import convert_classifier_to_backbone
from mmpvg.models import MPVGViT
from mmpvg.testing.references import ARCH, EMBED, PATCH, TOL, classifier


def test_classifier_to_backbone_resizes_pe_and_reports_unused(images):
    model = classifier('mpvg', seed=5)
    state = model.state_dict()
    converted, unused = convert_classifier_to_backbone(
        state, dst_prefix='', img_size=(48, 40))
    assert unused == ['head.fc.weight', 'head.fc.bias']
    assert set(converted) == {k[len('backbone.'):] for k in state
                              if k.startswith('backbone.')}
    expected = resize_pos_embed(state['backbone.pe.pos_embed'], (4, 4),
                                (6, 5), mode='bicubic', num_extra_tokens=0)
    assert converted['pe.pos_embed'].shape == (1, 30, EMBED)
    torch.testing.assert_close(converted['pe.pos_embed'], expected, atol=0,
                               rtol=0)

    # A backbone built for 48x40 inputs loads it strictly and gives what
    # the classifier's backbone gives on 48x40 (PE interpolated on the fly).
    downstream = MPVGViT(arch=ARCH, pe_mode='mpvg', img_size=(48, 40),
                         patch_size=PATCH, out_type='featmap').eval()
    downstream.load_state_dict(converted, strict=True)
    model.backbone.out_type = 'featmap'
    big = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        torch.testing.assert_close(downstream(big)[0],
                                   model.backbone(big)[0], **TOL)


def test_classifier_to_backbone_keeps_class_token_row():
    state = classifier('lape', seed=6).state_dict()
    state['data_preprocessor.extra'] = torch.zeros(1)  # any other key
    converted, unused = convert_classifier_to_backbone(
        state, patch_resolution=(5, 3))
    assert unused == ['head.fc.weight', 'head.fc.bias',
                      'data_preprocessor.extra']
    src_pos = state['backbone.pe.pos_embed']
    pos = converted['backbone.pe.pos_embed']
    assert pos.shape == (1, 1 + 15, EMBED)
    assert torch.equal(pos[:, :1], src_pos[:, :1])
    torch.testing.assert_close(
        pos, resize_pos_embed(src_pos, (4, 4), (5, 3), mode='bicubic',
                              num_extra_tokens=1), atol=0, rtol=0)

    # 'backbone.' keys as an mmdet/mmseg model has them: strict load.
    holder = nn.Module()
    holder.backbone = MPVGViT(arch=ARCH, pe_mode='lape', img_size=(40, 24),
                              patch_size=PATCH)
    holder.load_state_dict(converted, strict=True)

    # Without a target grid the PE is left as it is.
    same, _ = convert_classifier_to_backbone(state)
    assert same['backbone.pe.pos_embed'] is src_pos


def test_classifier_to_backbone_wrong_prefix():
    state = classifier('cls').state_dict()
    with pytest.raises(ValueError,
                       match=r"No key of the checkpoint starts with "
                       r"'model\.'; its keys start with \['backbone\.', "
                       r"'head\.'\]"):
        convert_classifier_to_backbone(state, src_prefix='model.')
    with pytest.raises(ValueError, match='either patch_resolution or '
                       'img_size, not both'):
        convert_classifier_to_backbone(state, img_size=64,
                                       patch_resolution=8)
