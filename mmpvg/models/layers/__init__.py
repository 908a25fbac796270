from .layer_class_attention import LayerClassAttention
from .leff import LeFF
from .patch_embed import PatchEmbed
from .pe_modes import PE_MODES, SWITCHES, resolve_pe_switches
from .position_embedding import (LayerwisePositionEmbedding,
                                 PositionEmbeddings, resize_pos_embed,
                                 sinusoid_table)
from .t2t_module import T2TModule, TokenPerformer, unfold_grid
from .transformer import Attention, Mlp, TransformerBlock
from .window import window_partition, window_unpartition

__all__ = [
    'Attention', 'LayerClassAttention', 'LayerwisePositionEmbedding', 'LeFF',
    'Mlp', 'PE_MODES',
    'PatchEmbed', 'PositionEmbeddings', 'SWITCHES', 'T2TModule',
    'TokenPerformer', 'TransformerBlock', 'unfold_grid',
    'resize_pos_embed', 'resolve_pe_switches', 'sinusoid_table',
    'window_partition', 'window_unpartition'
]
