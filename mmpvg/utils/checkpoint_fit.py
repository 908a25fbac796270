# Copyright (c) mmpvg contributors. All rights reserved.
"""Loading that cannot be silently wrong: a checkpoint must fit its model.

mmengine loads ``load_from``, ``--resume`` and ``init_cfg=dict(type=
'Pretrained')`` with ``strict=False`` and only warns about the keys that do
not fit, so a checkpoint of another format loads nothing and the model
runs with random weights. Here:

- :class:`CheckpointFitHook` (``after_load_checkpoint``, before the Runner
  loads the weights) checks ``load_from`` and ``--resume`` checkpoints:
  ``tools/test.py`` and resuming need every key to fit; fine-tuning
  (``load_from`` in training) needs every key of the backbone.
- ``Pretrained`` (mmengine's weight initialiser, replaced on ``import
  mmpvg``) checks what it loads into a module that holds an mmpvg
  backbone; other modules load as mmengine loads them.

What may legitimately be absent when fine-tuning or initialising a part of
a model (heads, necks, the adapter modules of a ViT-Adapter, a classifier's
head when initialising a detector) is listed in the log. The class token
of a class-token checkpoint loaded into a GAP model, and a PE on another
token grid, are handled by the backbones' own load hooks before the keys
are compared. A checkpoint that does not fit raises
:class:`CheckpointMismatchError`, naming the file, the missing, unexpected
and mis-shaped keys, and, for a foreign format, the converter to use.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.registry import HOOKS, WEIGHT_INITIALIZERS

from .errors import InputError

__all__ = ['CheckpointMismatchError', 'compare_and_load', 'core_prefixes',
           'CheckpointFitHook', 'FitPretrainedInit']

_SIZE_MISMATCH_RE = re.compile(r'size mismatch for (\S+?):')
_SHOWN = 6  # keys shown per list in messages


class CheckpointMismatchError(InputError, RuntimeError):
    """A checkpoint whose keys do not fit the model it is loaded into (a
    ValueError for the command lines, a RuntimeError like mmengine's strict
    loading)."""


def _abbrev(keys: List[str]) -> str:
    shown = ', '.join(keys[:_SHOWN])
    more = f', ... (+{len(keys) - _SHOWN} more)' if len(keys) > _SHOWN else ''
    return f'[{shown}{more}]'


def _unwrap(model):
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def compare_and_load(module, state_dict: Mapping) -> Dict[str, List[str]]:
    """Load ``state_dict`` into ``module`` as mmengine's ``load_state_dict``
    does, and return what did not fit.

    The module's load hooks run first (the PE resize, dropping a class
    token the model has not), so what they handle is not reported.

    Args:
        module (nn.Module): The model or the part of it to load into.
        state_dict (Mapping): The state dict (keys relative to ``module``).

    Returns:
        dict: ``missing`` (the module's keys the state dict lacks, BN's
        ``num_batches_tracked`` aside), ``unexpected`` (keys of the state
        dict the module has not) and ``mismatched`` (keys whose shapes
        differ; not loaded), each a sorted list.
    """
    from torch.nn.modules.module import _IncompatibleKeys
    module = _unwrap(module)
    metadata = getattr(state_dict, '_metadata', None)
    state_dict = OrderedDict(state_dict)
    missing: List[str] = []
    unexpected: List[str] = []
    errors: List[str] = []

    def load(mod, local, prefix=''):
        meta = {} if metadata is None else metadata.get(prefix[:-1], {})
        mod._load_from_state_dict(local, prefix, meta, True, missing,
                                  unexpected, errors)
        for name, child in mod._modules.items():
            if child is not None:
                child_prefix = f'{prefix}{name}.'
                load(child, {k: v for k, v in local.items()
                             if k.startswith(child_prefix)}, child_prefix)
        keys = _IncompatibleKeys(missing, unexpected)
        for hook in getattr(mod, '_load_state_dict_post_hooks', {}).values():
            hook(mod, keys)

    load(module, state_dict)
    mismatched = [m.group(1) for m in map(_SIZE_MISMATCH_RE.search, errors)
                  if m]
    return dict(
        missing=sorted(k for k in missing if 'num_batches_tracked' not in k),
        unexpected=sorted(unexpected), mismatched=sorted(mismatched))


def core_prefixes(module) -> List[str]:
    """The key prefixes that a checkpoint must cover when fine-tuning: each
    mmpvg backbone in ``module`` (the ViT inside a ViT-Adapter, the backbone
    of a detector), else ``backbone.``, else the whole module ('')."""
    from mmpvg.models.backbones.base import PEBackbone
    module = _unwrap(module)
    found = []
    for name, sub in module.named_modules():
        if isinstance(sub, PEBackbone) and \
                not any(name.startswith(p) for p in found):
            found.append(f'{name}.' if name else '')
    if found:
        return found
    return ['backbone.'] if hasattr(module, 'backbone') else ['']


def _describe_model(module) -> str:
    from mmpvg.models.backbones.base import PEBackbone
    module = _unwrap(module)
    backbones = [m for m in module.modules() if isinstance(m, PEBackbone)]
    what = type(module).__name__
    if backbones:
        b = backbones[0]
        pe_mode = getattr(b, 'pe_mode', None)
        inner = type(b).__name__ + (f" pe_mode='{pe_mode}'" if pe_mode else '')
        if b is not module:
            what += f' with {inner}'
        else:
            what = inner
    return what


def _format_hint(state_dict: Mapping) -> str:
    """What format the checkpoint is, and the converter to use."""
    from mmpvg.converters.formats import describe_format, detect_format
    from mmpvg.converters.io import unwrap_state_dict
    try:  # a timm/DeiT file keeps its weights under 'model'
        state_dict = unwrap_state_dict(state_dict)[0]
    except ValueError:
        pass
    return describe_format(detect_format(state_dict))


def _hints(state_dict: Mapping, module, prefixes: List[str]) -> str:
    """What the checkpoint is and what to do about it, for the message."""
    # a whole model's checkpoint loaded into its backbone
    if any(k.startswith('backbone.') for k in state_dict) and \
            not hasattr(_unwrap(module), 'backbone'):
        return ("Its keys start with 'backbone.': to initialise a backbone, "
                "use init_cfg=dict(type='Pretrained', checkpoint=..., "
                "prefix='backbone.').")
    hints = [_format_hint(state_dict)]
    if hints[0].startswith('It is an mmpvg'):
        # which MPVGViT the checkpoint holds, read back from its keys
        from mmpvg.converters.arch import infer_vit_arch
        for prefix in dict.fromkeys(prefixes + ['backbone.', '']):
            if prefix + 'patch_embed.proj.weight' not in state_dict:
                continue
            try:
                arch = infer_vit_arch(state_dict, prefix)
            except (KeyError, ValueError):
                break
            hints.append(
                f"Its backbone reads as pe_mode='{arch['pe_mode']}' with "
                f"{arch['num_layers']} blocks of {arch['embed_dims']} "
                'channels; check the config it was trained with.')
            break
    return ' '.join(hints)


def check_fit(module, state_dict: Mapping, source: str, exact: bool,
              what: Optional[str] = None) -> Dict[str, List[str]]:
    """Load ``state_dict`` into ``module``; refuse if it does not fit.

    Args:
        module (nn.Module): The model or the part of it to load into.
        state_dict (Mapping): Its state dict.
        source (str): The checkpoint file, for messages.
        exact (bool): Every key must fit (evaluation, resuming). Otherwise
            every key of the backbone (:func:`core_prefixes`) must, and what
            else is missing, unexpected or mis-shaped (heads, necks,
            adapter modules) is listed in the log.
        what (str, optional): How to call the module in messages.

    Returns:
        dict: As :func:`compare_and_load`.

    Raises:
        CheckpointMismatchError: If the checkpoint does not fit.
    """
    prefixes = [''] if exact else core_prefixes(module)
    result = compare_and_load(module, state_dict)

    def in_core(key):
        return any(key.startswith(p) for p in prefixes)

    bad = {k: [x for x in v if in_core(x)] for k, v in result.items()}
    if any(bad.values()):
        model = what or _describe_model(module)
        parts = []
        if bad['missing']:
            parts.append(f'{len(bad["missing"])} missing '
                         f'{_abbrev(bad["missing"])}')
        if bad['unexpected']:
            parts.append(f'{len(bad["unexpected"])} unexpected '
                         f'{_abbrev(bad["unexpected"])}')
        if bad['mismatched']:
            parts.append(f'{len(bad["mismatched"])} of another shape '
                         f'{_abbrev(bad["mismatched"])}')
        scope = '' if exact else (
            ' in ' + ', '.join(repr(p or 'the model') for p in prefixes))
        raise CheckpointMismatchError(
            f'Checkpoint {source!r} does not fit {model}: keys{scope}: '
            + '; '.join(parts) + '. ' + _hints(state_dict, module, prefixes))
    legit = {k: [x for x in v if not in_core(x)] for k, v in result.items()}
    if any(legit.values()):
        # in full, one list a line, worded as mmengine words them
        print_log(f'Checkpoint {source!r} fits the backbone of '
                  f'{what or _describe_model(module)}; outside it (expected '
                  'when initialising a part of a model), these keys did not '
                  'load and keep their configured init:', logger='current')
        for label, keys in (
                ('missing keys in source state_dict', legit['missing']),
                ('unexpected key in source state_dict', legit['unexpected']),
                ('keys of another shape, not loaded', legit['mismatched'])):
            if keys:
                print_log(f'{label}: {", ".join(keys)}', logger='current')
    return result


def _state_dict_of(checkpoint) -> Mapping:
    """The state dict as mmengine's ``_load_checkpoint_to_model`` finds it,
    with the ``module.`` prefix of a DDP-wrapped model removed."""
    state_dict = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, Mapping) else checkpoint
    metadata = getattr(state_dict, '_metadata', None)
    out = OrderedDict((re.sub(r'^module\.', '', k), v)
                      for k, v in state_dict.items())
    if metadata is not None:
        out._metadata = metadata
    return out


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Refuse a ``load_from`` / ``--resume`` checkpoint that does not fit.

    Runs at ``after_load_checkpoint``, before the Runner loads the
    weights. ``tools/test.py`` registers it with ``exact=True``,
    ``tools/train.py`` with ``exact=False`` (resuming is always exact).

    Args:
        exact (bool): Every key must fit (evaluation). Otherwise the
            backbone's keys must, and the rest is listed. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, exact: bool = True):
        self.exact = exact

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from .checkpoint import last_loaded
        if not isinstance(checkpoint, Mapping):
            raise CheckpointMismatchError(
                f'Checkpoint {last_loaded()!r} holds a '
                f'{type(checkpoint).__name__}, not a dict; expected a '
                'torch.save checkpoint of a state dict or a dict with a '
                '"state_dict" entry.')
        exact = self.exact or getattr(runner, '_resume', False)
        check_fit(runner.model, _state_dict_of(checkpoint), last_loaded(),
                  exact=exact)


class FitPretrainedInit(PretrainedInit):
    """mmengine's ``Pretrained`` initialiser, checked for fit.

    Registered as ``Pretrained`` on ``import mmpvg``. For a module that
    holds an mmpvg backbone, the checkpoint (under ``prefix``) must cover
    every backbone key (see :func:`check_fit` with ``exact=False``);
    other modules load as mmengine loads them.
    """

    def __call__(self, module):
        if not _has_pe_backbone(module):
            return super().__call__(module)
        from mmengine.runner.checkpoint import _load_checkpoint

        checkpoint = _load_checkpoint(self.checkpoint,
                                      map_location=self.map_location)
        state_dict = _state_dict_of(checkpoint)
        if self.prefix:
            prefix = self.prefix if self.prefix.endswith('.') \
                else self.prefix + '.'
            selected = OrderedDict((k[len(prefix):], v)
                                   for k, v in state_dict.items()
                                   if k.startswith(prefix))
            if not selected:
                heads = sorted({k.split('.')[0] + '.' for k in state_dict})
                raise CheckpointMismatchError(
                    f'Checkpoint {self.checkpoint!r} has no key starting '
                    f"with init_cfg prefix={self.prefix!r}: its keys start "
                    f'with {_abbrev(heads)}. ' + _format_hint(state_dict))
            print_log(f'load {prefix} in model from: {self.checkpoint}',
                      logger='current')
            state_dict = selected
        else:
            print_log(f'load model from: {self.checkpoint}', logger='current')
        check_fit(module, state_dict, self.checkpoint, exact=False)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())


def _has_pe_backbone(module) -> bool:
    from mmpvg.models.backbones.base import PEBackbone
    return any(isinstance(m, PEBackbone) for m in _unwrap(module).modules())


def install_fit_checks():
    """Register :class:`FitPretrainedInit` as ``Pretrained``; idempotent."""
    WEIGHT_INITIALIZERS.register_module(
        name='Pretrained', module=FitPretrainedInit, force=True)
