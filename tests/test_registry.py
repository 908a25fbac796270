"""Registration: found from every scope, without importing the others."""
import subprocess
import sys

import pytest

PROBE = ('import sys, time; t = time.perf_counter(); import mmpvg; '
         'print(time.perf_counter() - t); '
         'print(sorted(m for m in ("mmdet", "mmseg", "mmcv.ops") '
         'if m in sys.modules))')


def test_import_mmpvg_imports_neither_mmdet_nor_mmseg_nor_mmcv_ops():
    out = subprocess.run([sys.executable, '-c', PROBE], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[-1] == '[]', out


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_models_and_constructor_found_from_every_scope(scope):
    import importlib

    import mmpvg  # noqa: F401
    from mmpvg.models import MPVGViT, SimpleFeaturePyramid
    registry = importlib.import_module(f'{scope}.registry')
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        m = registry.MODELS.build(dict(
            type='MPVGViT', arch=dict(embed_dims=16, num_layers=2,
                                      num_heads=2, feedforward_channels=16),
            img_size=16, patch_size=8, pe_mode='pvg'))
        assert isinstance(m, MPVGViT)
        assert registry.MODELS.get('MPVGViTAdapter').__name__ == \
            'MPVGViTAdapter'
        assert registry.MODELS.get('SimpleFeaturePyramid') is \
            SimpleFeaturePyramid
        assert registry.OPTIM_WRAPPER_CONSTRUCTORS.get(
            'LayerDecayOptimWrapperConstructor').__name__ == \
            'LayerDecayOptimWrapperConstructor'


def test_lazy_registration_builds_the_real_class():
    import torch.nn as nn
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.engine.optimizers import \
        LearningRateDecayOptimWrapperConstructor

    import mmpvg  # noqa: F401
    from mmpvg.models import MPVGViT
    from mmpvg.registry import OPTIM_WRAPPER_CONSTRUCTORS
    model = nn.Module()
    model.backbone = MPVGViT(arch=dict(embed_dims=16, num_layers=2,
                                       num_heads=2, feedforward_channels=16),
                             img_size=16, patch_size=8)
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.5)))
    real = OPTIM_WRAPPER_CONSTRUCTORS.get('LayerDecayOptimWrapperConstructor')
    assert issubclass(real, LearningRateDecayOptimWrapperConstructor)
    lrs = {g['lr'] for g in wrapper.optimizer.param_groups}
    assert lrs == {1e-3 * 0.5**k for k in range(4)}


def test_lazy_stand_in_that_registers_nothing_is_a_clear_error():
    from mmengine.registry import Registry

    from mmpvg.registry import register_lazy
    registry = Registry('lazy-test')
    register_lazy(registry, 'Missing', 'json')  # json registers nothing
    with pytest.raises(ImportError, match="json did not register 'Missing'"):
        registry.build(dict(type='Missing'))
