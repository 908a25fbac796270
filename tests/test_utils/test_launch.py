"""Error paths of the helpers behind tools/train.py and tools/test.py."""
import pytest
from mmengine.config import Config

from mmpvg.utils.launch import (dump_results_metric, enable_amp,
                                enable_auto_scale_lr, enable_visualization,
                                evaluator_metrics, load_config,
                                prepare_test_output)


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


IOU = dict(type='IoUMetric', iou_metrics=['mIoU'])


@pytest.mark.parametrize('evaluator', [
    IOU,
    [IOU],
    [dict(type='mmseg.IoUMetric'), dict(type='CityscapesMetric')],
    dict(metrics=[IOU]),
    dict(type='Evaluator', metrics=IOU),
], ids=['dict', 'list', 'scoped-list', 'metrics-list', 'metrics-dict'])
def test_segmentation_out_sets_every_iou_metric(evaluator):
    cfg = Config(dict(default_scope='mmseg', test_evaluator=evaluator))
    assert prepare_test_output(cfg, 'label_maps') is None
    metrics = evaluator_metrics(cfg.test_evaluator)
    for metric in metrics:
        if metric['type'].endswith('IoUMetric'):
            assert metric['output_dir'] == 'label_maps'
            assert metric['keep_results'] is True
        else:  # other metrics are left alone
            assert 'output_dir' not in metric
    assert any('output_dir' in m for m in metrics)


@pytest.mark.parametrize('evaluator', [
    dict(type='CityscapesMetric'), [dict(type='CityscapesMetric')], []])
def test_segmentation_out_needs_an_iou_metric(evaluator):
    cfg = Config(dict(default_scope='mmseg', test_evaluator=evaluator))
    with pytest.raises(ValueError, match=r"--out for a segmentation config "
                       r"writes label maps through mmseg's IoUMetric"):
        prepare_test_output(cfg, 'label_maps')


@pytest.mark.parametrize('evaluator', [
    dict(type='Accuracy', topk=(1, )),
    [dict(type='Accuracy', topk=(1, )), dict(type='SingleLabelMetric')],
], ids=['dict', 'list'])
def test_dump_out_appends_to_the_built_evaluator(evaluator):
    """Classification/detection --out: the dump metric joins the Evaluator
    the Runner builds from test_evaluator, a dict or a list alike."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    cfg = Config(dict(default_scope='mmpretrain', test_evaluator=evaluator))
    dump = prepare_test_output(cfg, 'preds.pkl')
    assert type(dump).__name__ == 'DumpResults'
    assert cfg.test_evaluator == evaluator  # the config is not changed
    init_default_scope('mmpretrain')
    # Runner.build_evaluator uses no Runner state.
    built = Runner.build_evaluator(None, cfg.test_evaluator)
    built.metrics.append(dump)
    names = [type(m).__name__ for m in built.metrics]
    assert names[-1] == 'DumpResults'
    assert len(names) == len(evaluator_metrics(evaluator)) + 1


def test_evaluator_metrics_rejects_other_types():
    with pytest.raises(TypeError, match='got str'):
        evaluator_metrics('IoUMetric')


DEMO_CLS = 'configs/demo/vit-demo-mpvg_1xb64_demo-digits.py'


def test_misspelt_top_level_cfg_option_is_refused():
    """A top-level key the config does not have and the Runner never reads
    used to be added and ignored (issue 11)."""
    from mmpvg.testing import REPO_ROOT
    path = f'{REPO_ROOT}/{DEMO_CLS}'
    with pytest.raises(ValueError, match=r"--cfg-options trian_cfg"
                       r"\.max_epochs: 'trian_cfg' is neither a top-level key"
                       r" of the config nor one the Runner reads, so it would"
                       r" be ignored\. Did you mean 'train_cfg'"):
        load_config(path, {'trian_cfg.max_epochs': 2})
    # keys of the config, and keys the Runner reads without the config
    # setting them, are accepted
    cfg = load_config(path, {'train_cfg.max_epochs': 2,
                             'find_unused_parameters': True,
                             'model_wrapper_cfg': dict(type='X')})
    assert cfg.train_cfg.max_epochs == 2 and cfg.find_unused_parameters
