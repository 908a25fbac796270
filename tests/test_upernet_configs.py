"""configs/upernet: the ADE20K recipe of the MPVG paper, one base."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import ROOT

UPERNET = sorted(glob.glob(osp.join(ROOT, 'configs/upernet/*.py')))


def test_every_mode_has_an_adapter_config_and_a_plain_variant():
    names = [osp.basename(p) for p in UPERNET]
    for mode in ('cls', 'lape', 'pvg', 'mpvg'):
        name = f'upernet_{mode}-adapter-ti_4xb2-160k_ade20k-512x512.py'
        assert name in names
    assert 'upernet_mpvg-vit-ti_mln_4xb2-160k_ade20k-512x512.py' in names
    assert len(names) == 5


@pytest.mark.parametrize('path', UPERNET, ids=osp.basename)
def test_recipe(path):
    cfg = Config.fromfile(path)
    # the name says the PE mode (upernet_<mode>-...)
    assert osp.basename(path).split('_')[1].startswith(
        f'{cfg.model.backbone.pe_mode}-')
    assert cfg.default_scope == 'mmseg'
    assert 'mmpvg' in cfg.custom_imports.imports
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW'
    assert (opt.optimizer.lr, opt.optimizer.weight_decay) == (12e-5, 0.01)
    assert opt.constructor == 'LayerDecayOptimWrapperConstructor'
    pw = opt.paramwise_cfg
    assert pw.layer_decay_rate == 0.95
    assert pw.norm_decay_mult == 0.0 and pw.bias_decay_mult == 0.0
    assert pw.custom_keys['.pos_embed'].decay_mult == 0.0
    assert pw.custom_keys['.level_embed'].decay_mult == 0.0
    warmup, poly = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and (warmup.begin, warmup.end) == (0,
                                                                        1500)
    assert poly.type == 'PolyLR' and (poly.begin, poly.end) == (1500, 160000)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size * 4 == 8  # 4xb2
    assert cfg.crop_size == (512, 512)
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512),
                                      stride=(341, 341))
    assert cfg.model.decode_head.type == 'UPerHead'
    assert cfg.model.auxiliary_head.type == 'FCNHead'
    assert cfg.model.decode_head.num_classes == 150

    backbone = cfg.model.backbone
    assert backbone.img_size == 512 and backbone.arch == 'deit-tiny'
    if backbone.type == 'MPVGViTAdapter':
        assert backbone.window_size == 0 and backbone.global_attn_indexes == ()
        assert cfg.model.get('neck') is None
    else:
        assert backbone.type == 'MPVGViT'
        assert backbone.out_indices == (2, 5, 8, 11)
        assert cfg.model.neck.type == 'MultiLevelNeck'
    # initialised from the classification config of the same PE mode
    init = backbone.init_cfg
    assert init.type == 'Pretrained' and init.prefix == 'backbone.'
    work_dir, ckpt = osp.split(init.checkpoint)
    assert ckpt == 'epoch_300.pth'
    cls_cfg = osp.join(ROOT, 'configs/mpvg', osp.basename(work_dir) + '.py')
    assert osp.isfile(cls_cfg), init.checkpoint
    assert Config.fromfile(cls_cfg).model.backbone.pe_mode == backbone.pe_mode
