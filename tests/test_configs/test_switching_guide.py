"""README "Switching from mmpretrain / mmseg / ViTDet": each worked example
is a config that builds on the upstream package's own config, and loads
what mmpretrain2mpvg.py makes of the upstream model's weights."""
import os.path as osp
import re

import torch
from mmengine.config import Config

import mmpvg  # noqa: F401
from mmpvg.converters import convert_mmpretrain_to_mpvg
from mmpvg.testing import REPO_ROOT
from config_convention import build_model

SECTION = '## Switching from mmpretrain / mmseg / ViTDet'


def examples():
    with open(osp.join(REPO_ROOT, 'README.md')) as f:
        text = f.read()
    start = text.index(SECTION)
    section = text[start:text.index('\n## ', start + 1)]
    return re.findall(r'```python\n(.*?)```', section, re.S)


def load(tmp_path, source, name):
    path = tmp_path / f'{name}.py'
    path.write_text(source)
    return Config.fromfile(str(path))


def randomise(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * 0.02
            p.copy_(noise + (1.0 if p.ndim == 1 and 'weight' in name
                             else 0.0))
    return model


def test_three_examples():
    found = examples()
    assert len(found) == 3
    assert [re.search(r"_base_ = '(\w+)::", e).group(1) for e in found] == [
        'mmpretrain', 'mmdet', 'mmseg']


def test_classification_example_gives_mmpretrain_logits(tmp_path):
    cfg = load(tmp_path, examples()[0], 'cls')
    src_cfg = Config.fromstring(
        "_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'\n", '.py')
    src = randomise(build_model(src_cfg), seed=0).eval()
    ours = build_model(cfg).eval()
    converted = convert_mmpretrain_to_mpvg(src.state_dict())
    ours.load_state_dict(converted, strict=True)
    images = torch.randn(1, 3, 224, 224,
                         generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(images, mode='tensor'),
                                   src(images, mode='tensor'),
                                   atol=1e-5, rtol=1e-5)


def test_detection_example_builds_a_pyramid(tmp_path):
    cfg = load(tmp_path, examples()[1], 'det')
    model = build_model(cfg).eval()
    assert type(model.backbone).__name__ == 'MPVGViT'
    assert model.backbone.global_attn_indexes == [2, 5, 8, 11]
    with torch.no_grad():
        maps = model.neck(model.backbone(torch.randn(1, 3, 64, 64)))
    assert [m.shape[-1] for m in maps] == [16, 8, 4, 2, 1]
    assert all(m.shape[1] == 256 for m in maps)


def test_segmentation_example_loads_the_mmseg_segmentor(tmp_path):
    cfg = load(tmp_path, examples()[2], 'seg')
    ours = build_model(cfg)
    src_cfg = Config.fromstring(
        "_base_ = 'mmseg::vit/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-"
        "512x512.py'\nmodel = dict(pretrained=None)\n", '.py')
    src = build_model(src_cfg)
    converted = convert_mmpretrain_to_mpvg(src.state_dict())
    # every key, heads included, fits the example's model
    ours.load_state_dict(converted, strict=True)
    assert ours.backbone.out_indices == [2, 5, 8, 11]
    assert not ours.backbone.final_norm
