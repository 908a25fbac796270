"""Error paths of the helpers behind tools/train.py and tools/test.py."""
import pytest
from mmengine.config import Config

from mmpvg.utils.launch import (dump_results_metric, enable_amp,
                                enable_auto_scale_lr, enable_visualization,
                                load_config)


def test_dump_results_needs_a_pickle_file():
    with pytest.raises(ValueError, match=r"--out must be a \.pkl file, "
                       r"got 'preds\.json'"):
        dump_results_metric('mmpretrain', 'preds.json')
    assert type(dump_results_metric('mmdet', 'p.pkl')).__name__ == \
        'DumpDetResults'
    assert type(dump_results_metric('mmpretrain', 'p.pkl')).__name__ == \
        'DumpResults'


def test_amp_needs_a_plain_optim_wrapper():
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    cfg = Config(dict(optim_wrapper=dict(type='ApexOptimWrapper')))
    with pytest.raises(ValueError, match="needs optim_wrapper.type "
                       "OptimWrapper, got 'ApexOptimWrapper'"):
        enable_amp(cfg)


def test_auto_scale_lr_needs_a_base_batch_size():
    cfg = Config(dict(auto_scale_lr=dict(enable=False, base_batch_size=16)))
    enable_auto_scale_lr(cfg)
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)
    for cfg in (Config(dict()), Config(dict(auto_scale_lr=dict(enable=True)))):
        with pytest.raises(ValueError, match=r'--auto-scale-lr needs '
                           r'auto_scale_lr = dict\(base_batch_size=N\)'):
            enable_auto_scale_lr(cfg)


def test_show_dir_needs_a_visualization_hook():
    cfg = Config(dict(default_scope='mmdet', default_hooks=dict()))
    with pytest.raises(ValueError, match='needs a `visualization` hook'):
        enable_visualization(cfg, 'vis')
    cfg = Config(dict(default_scope='mmdet', default_hooks=dict(
        visualization=dict(type='DetVisualizationHook'))))
    enable_visualization(cfg, 'vis')
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.default_hooks.visualization.test_out_dir == 'vis'


def test_load_config_rejects_unknown_scopes(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text("default_scope = 'mmocr'\n")
    with pytest.raises(ValueError, match="default_scope='mmocr' is not "
                       'supported'):
        load_config(str(path))
