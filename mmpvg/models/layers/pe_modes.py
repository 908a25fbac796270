# Copyright (c) mmpvg contributors. All rights reserved.
"""What each ``pe_mode`` means, and the checks every backbone family shares.

A mode is a row of switches (:data:`PE_MODES`); the paper's ablations are
the same switches given explicitly. :func:`resolve_pe_switches` fills the
unset ones from the mode and rejects the combinations the paper rules out,
with an error that says what is accepted. A family whose modes differ (Swin
has no class token; its PVG starts at block 0) passes its own table.
"""
import copy
from typing import Dict, Optional

from mmpvg.utils.checks import check_flag

# What each ``pe_mode`` means, as values of the ablation switches.
PE_MODES = {
    'cls': dict(with_cls_token=True, pe_at_input=True, layerwise_pe=False,
                pe_first_block=False, hierarchical_pe=True, last_ln_pe=None),
    'gap': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=False,
                pe_first_block=False, hierarchical_pe=True, last_ln_pe=None),
    'lape': dict(with_cls_token=True, pe_at_input=False, layerwise_pe=True,
                 pe_first_block=True, hierarchical_pe=True, last_ln_pe=None),
    'pvg': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=True,
                pe_first_block=False, hierarchical_pe=True, last_ln_pe=None),
    'mpvg': dict(with_cls_token=False, pe_at_input=True, layerwise_pe=True,
                 pe_first_block=False, hierarchical_pe=True, last_ln_pe=0),
}
SWITCHES = tuple(PE_MODES['mpvg'])


def resolve_pe_switches(pe_mode: str,
                        num_layers: int,
                        dense_output: bool = False,
                        modes: Optional[Dict[str, dict]] = None,
                        **given) -> dict:
    """Fill unset switches from ``pe_mode`` and reject impossible mixes.

    Args:
        pe_mode (str): A key of ``modes``.
        num_layers (int): Number of blocks (bounds ``last_ln_pe``).
        dense_output (bool): The backbone outputs token maps, not a pooled
            vector, so a class-token mode may drop its class token (as
            ViT-Adapter and mmseg do). Defaults to False.
        modes (dict, optional): The family's mode table. Defaults to
            :data:`PE_MODES`.
        **given: The switches of :data:`SWITCHES` as passed by the user;
            ``None`` means "as the mode says". ``last_ln_pe`` may be a bool
            (True: 0, False: none).

    Returns:
        dict: Every switch of :data:`SWITCHES`, ``last_ln_pe`` an int or None.
    """
    modes = PE_MODES if modes is None else modes
    if pe_mode not in modes:
        raise ValueError(f'pe_mode={pe_mode!r} is not supported; choose '
                         f'from {list(modes)}.')
    unknown = set(given) - set(SWITCHES)
    if unknown:
        raise TypeError(f'Unknown PE switches {sorted(unknown)}; the '
                        f'switches are {list(SWITCHES)}.')
    for name, value in given.items():
        if name != 'last_ln_pe':
            check_flag(name, value)
    mode = modes[pe_mode]
    sw = copy.deepcopy(mode)
    sw.update({k: v for k, v in given.items() if v is not None})

    if sw['with_cls_token'] != mode['with_cls_token']:
        if not mode['with_cls_token']:
            raise ValueError(
                f'pe_mode={pe_mode!r} pools tokens by GAP and cannot have '
                'a class token (the paper: MPVG is incompatible with a '
                "class token); use pe_mode 'cls' or 'lape' for "
                'class-token models.')
        if not dense_output:
            raise ValueError(
                f'pe_mode={pe_mode!r} is a class-token model; '
                'with_cls_token=False is only for dense outputs '
                "(out_type 'featmap' or 'raw'). For a GAP classifier "
                "use pe_mode 'gap', 'pvg' or 'mpvg' (a LaPE-style "
                "chain without class token: pe_mode='pvg', "
                'pe_first_block=True, pe_at_input=False).')
    if not sw['layerwise_pe']:
        for name in ('pe_first_block', 'hierarchical_pe'):
            if given.get(name) is not None:
                raise ValueError(
                    f'{name} only applies to the layer-wise PE path, '
                    f'which pe_mode={pe_mode!r} with '
                    f'layerwise_pe={sw["layerwise_pe"]} does not have.')

    last = sw['last_ln_pe']
    if isinstance(last, bool):
        last = 0 if last else None
    if last is not None:
        if sw['with_cls_token']:
            raise ValueError(
                f'last_ln_pe needs GAP, but pe_mode={pe_mode!r} uses a '
                'class token (the paper: MPVG is incompatible with a '
                "class token); use pe_mode 'gap', 'pvg' or 'mpvg'.")
        num_steps = 0
        if sw['layerwise_pe']:
            num_steps = num_layers - (0 if sw['pe_first_block'] else 1)
        if not isinstance(last, int) or not 0 <= last <= num_steps:
            raise ValueError(
                f'last_ln_pe={last!r} must be an int k in [0, {num_steps}]'
                ' (pos_0 is the raw PE, pos_k the k-th PE of the chain) '
                'or False.')
    sw['last_ln_pe'] = last
    return sw
