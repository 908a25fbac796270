"""Token-grid arithmetic: tokens of an image, and reading a PE's rows."""
import pytest

from mmpvg.utils.grid import as_pair, pos_embed_grid, token_grid


def test_token_grid_rounds_up_per_side():
    assert token_grid(224, 16) == (14, 14)
    assert token_grid(32, 4) == (8, 8)
    # The patch embedding pads bottom/right: a partial patch is a token.
    assert token_grid(225, 16) == (15, 15)
    assert token_grid((512, 300), 16) == (32, 19)
    assert token_grid([64, 48], (16, 8)) == (4, 6)
    assert token_grid((40, ), 16) == (3, 3)
    assert token_grid(1, 16) == (1, 1)


@pytest.mark.parametrize('img, patch', [(0, 16), (224, 0), ((224, -1), 16)])
def test_token_grid_rejects_non_positive_sizes(img, patch):
    with pytest.raises(ValueError, match='must be positive'):
        token_grid(img, patch)


def test_as_pair():
    assert as_pair(7) == (7, 7)
    assert as_pair((7, )) == (7, 7)
    assert as_pair([3, 5]) == (3, 5)
    with pytest.raises(ValueError, match=r'one or two token-grid sizes .* '
                       r'got \(1, 2, 3\)'):
        as_pair((1, 2, 3), 'token-grid size')
    with pytest.raises(ValueError):
        as_pair(())


@pytest.mark.parametrize('rows, expected', [
    (196, (0, 14)),  # GAP model, 14x14 grid
    (197, (1, 14)),  # class token + 14x14
    (1, (0, 1)),  # 1x1 grid, no class token (not 1 + an empty grid)
    (2, (1, 1)),
    (17, (1, 4)),
    (16, (0, 4)),
    (198, None),  # 2 + 14x14 (distilled DeiT) is neither
    (0, None),
    (3, None),
])
def test_pos_embed_grid_tries_zero_then_one_extra_row(rows, expected):
    assert pos_embed_grid(rows) == expected


def test_pos_embed_grid_with_given_extra_rows():
    assert pos_embed_grid(197, 1) == (1, 14)
    assert pos_embed_grid(197, 0) is None
    assert pos_embed_grid(196, 1) is None
    assert pos_embed_grid(198, 2) == (2, 14)
    assert pos_embed_grid(1, 1) is None  # no empty grids
    assert pos_embed_grid(5, 4) == (4, 1)
    with pytest.raises(ValueError, match='num_extra_tokens must be >= 0'):
        pos_embed_grid(16, -1)


def test_no_heavy_imports():
    """The module is imported by models and tools alike: no torch needed."""
    import ast
    import inspect

    import mmpvg.utils.grid as grid
    tree = ast.parse(inspect.getsource(grid))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split('.')[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split('.')[0])
    assert imported <= {'math', 'typing'}
