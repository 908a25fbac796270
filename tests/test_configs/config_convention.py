"""The config convention of configs/README.md, as checks the tests share.

Each config file is read twice: merged by mmengine (what a run sees) and
as Python source (what each file of an inheritance chain sets itself).
"""
import ast
import glob
import os.path as osp

from mmpvg.testing import REPO_ROOT

CONFIGS = osp.join(REPO_ROOT, 'configs')
TASK_DIRS = ('mpvg', 'mask_rcnn', 'upernet', 'demo')
MODES = ('cls', 'gap', 'lape', 'pvg', 'mpvg')
SCOPES = {'mask-rcnn': 'mmdet', 'upernet': 'mmseg'}


def leaves(scope=None):
    """Every leaf (configs/<task folder>/**.py) as a path relative to
    configs/, optionally only those of one default scope."""
    found = sorted(
        osp.relpath(p, CONFIGS) for d in TASK_DIRS
        for p in glob.glob(osp.join(CONFIGS, d, '**', '*.py'),
                           recursive=True))
    return [p for p in found if scope is None or scope_of(p) == scope]


def scope_of(rel):
    """The default scope a leaf's name implies: its algorithm prefix."""
    return SCOPES.get(osp.basename(rel).split('_')[0], 'mmpretrain')


def name_fields(rel):
    """The underscore-separated fields of a leaf's file name."""
    return osp.basename(rel)[:-len('.py')].split('_')


def backbone_field(rel):
    """The backbone field: first for classification, second after the
    algorithm (mask-rcnn_, upernet_) for dense tasks."""
    fields = name_fields(rel)
    return fields[0] if scope_of(rel) == 'mmpretrain' else fields[1]


def mode_of_name(rel):
    """The PE mode a leaf's name states: the one dash part of the backbone
    field that is a mode; the last part, or, in ablations, the part right
    after the arch and before the ablation's name."""
    parts = backbone_field(rel).split('-')
    found = [i for i, p in enumerate(parts) if p in MODES]
    assert len(found) == 1, f'{rel}: one PE mode in {parts}, found {found}'
    index = found[0]
    if is_ablation(rel):
        assert index < len(parts) - 1, f'{rel}: mode, then the ablation'
    else:
        assert index == len(parts) - 1, f'{rel}: the mode comes last'
    return parts[index]


def model_of_name(rel):
    """The model fragment a leaf's name implies (configs/_base_/models/):
    the name's model fields with the mode removed from the backbone."""
    fields = name_fields(rel)
    parts = backbone_field(rel).split('-')
    plain = '-'.join(p for p in parts if p not in MODES)
    if scope_of(rel) == 'mmpretrain':
        return plain
    model = [fields[0], plain]
    # a neck field (fpn, sfp, mln) sits between backbone and schedule
    if len(fields) == 5:
        model.append(fields[2])
    return '_'.join(model)


def is_ablation(rel):
    return '/ablations/' in rel


def _dict_keywords(node):
    if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'dict':
        return {k.arg: k.value for k in node.keywords if k.arg}
    return {}


def own_settings(path):
    """What one config file sets itself (not what it inherits)."""
    with open(path) as f:
        source = f.read()
    tree = ast.parse(source)
    top = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    top[target.id] = node.value
    bases = []
    if '_base_' in top:
        value = ast.literal_eval(top['_base_'])
        bases = [value] if isinstance(value, str) else list(value)
    model = _dict_keywords(top.get('model'))
    backbone = _dict_keywords(model.get('backbone'))
    init_cfg = _dict_keywords(backbone.get('init_cfg'))
    return dict(source=source, top=set(top), bases=bases,
                backbone=set(backbone), init_cfg=set(init_cfg))


def chain(path):
    """This project's files along a config's inheritance, leaf first
    (upstream bases, ``package::...``, are not followed)."""
    files = [path]
    for base in own_settings(path)['bases']:
        if '::' not in base:
            files += chain(osp.normpath(osp.join(osp.dirname(path), base)))
    return files


def is_fragment(path):
    return osp.relpath(path, CONFIGS).startswith('_base_' + osp.sep)


def check_inheritance(rel):
    """pe_mode once along the chain, set by a leaf of the named mode; no
    leaf of another mode inherited; no backbone _delete_ but where a
    fragment replaces an upstream package's backbone; no top-level
    pe_mode."""
    files = chain(osp.join(CONFIGS, rel))
    mode = mode_of_name(rel)
    setters = [f for f in files if 'pe_mode' in own_settings(f)['backbone']]
    assert len(setters) == 1, (rel, setters)
    assert not is_fragment(setters[0]), (rel, setters)
    for f in files:
        own = own_settings(f)
        assert 'pe_mode' not in own['top'], (rel, f)
        if not is_fragment(f):
            assert mode_of_name(osp.relpath(f, CONFIGS)) == mode, (rel, f)
        if '_delete_' in own['backbone']:
            # only a fragment replacing an upstream backbone (ResNet, ...):
            # none of this project's files below it sets a backbone
            assert is_fragment(f), (rel, f)
            for below in chain(f)[1:]:
                assert not own_settings(below)['backbone'], (
                    f'{f} deletes the backbone of {below}')


def check_pretrained(rel, cfg):
    """A downstream leaf names its checkpoint once, as `pretrained`, used
    in the backbone's init_cfg; nothing else along the chain names one."""
    path = osp.join(CONFIGS, rel)
    own = own_settings(path)
    assert 'pretrained' in own['top'] and 'checkpoint' in own['init_cfg']
    assert own['source'].count(cfg.pretrained) == 1, rel
    assert own['source'].count('.pth') == 1, rel
    for f in chain(path)[1:]:
        base = own_settings(f)
        assert 'pretrained' not in base['top'], (rel, f)
        assert 'checkpoint' not in base['init_cfg'], (rel, f)
        assert '.pth' not in base['source'], (rel, f)
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', prefix='backbone.', checkpoint=cfg.pretrained)
    # the checkpoint is what the classification config of the same name and
    # mode writes: work_dirs/[demo/]<config name>/<file>
    work_dir = osp.dirname(cfg.pretrained)
    folder = 'demo' if work_dir.startswith('work_dirs/demo/') else 'mpvg'
    cls_rel = osp.join(folder, osp.basename(work_dir) + '.py')
    assert osp.isfile(osp.join(CONFIGS, cls_rel)), cfg.pretrained
    assert scope_of(cls_rel) == 'mmpretrain'
    assert mode_of_name(cls_rel) == mode_of_name(rel), cfg.pretrained


def build_model(cfg):
    """Build a config's model in its default scope, as the Runner does."""
    import importlib

    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)
    registry = importlib.import_module(f'{cfg.default_scope}.registry')
    return registry.MODELS.build(cfg.model)


def built_pe_mode(backbone):
    """The pe_mode of a built backbone (itself, or the ViT inside a
    ViT-Adapter): the first module, in order, that has one."""
    return next(m.pe_mode for m in backbone.modules()
                if isinstance(getattr(m, 'pe_mode', None), str))


def by_suffix(decay, suffix):
    """The one value of ``decay`` whose parameter name ends with
    ``.suffix`` (the ViT's parameters may sit under an adapter's prefix)."""
    found = [v for n, v in decay.items() if n.endswith('.' + suffix)]
    assert len(found) == 1, (suffix, found)
    return found[0]


def decay_by_name(model, optim_wrapper):
    """{parameter name: weight decay} from a config's optim_wrapper."""
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert len(decay) == len(names)
    return decay


def norm_params(model):
    """Names of the parameters of every norm layer."""
    import torch.nn as nn
    from torch.nn.modules.batchnorm import _BatchNorm
    return {
        f'{m_name}.{p_name}' if m_name else p_name
        for m_name, m in model.named_modules()
        if isinstance(m, (nn.LayerNorm, _BatchNorm, nn.GroupNorm))
        for p_name, _ in m.named_parameters(recurse=False)
    }


def check_decay(decay, model, wd):
    """The one weight-decay rule: none on pos_0, the class token, the level
    embedding and any 1-D parameter (norms, biases, the adapter's gamma)."""
    params = dict(model.named_parameters())
    norms = norm_params(model)
    for name, value in decay.items():
        no_decay = (params[name].ndim <= 1 or name in norms
                    or name.endswith(('.bias', 'pos_embed', 'cls_token',
                                      'level_embed')))
        assert value == (0.0 if no_decay else wd), (name, value)
