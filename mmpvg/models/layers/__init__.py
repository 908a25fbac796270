from .position_embedding import LayerwisePositionEmbedding, PositionEmbeddings
from .transformer import Attention, Mlp, TransformerBlock

__all__ = [
    'LayerwisePositionEmbedding', 'PositionEmbeddings', 'Attention', 'Mlp',
    'TransformerBlock'
]
