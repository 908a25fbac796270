"""Fixtures shared by the test suite; helpers are in mmpvg.testing."""
import pytest


@pytest.fixture(autouse=True, scope='session')
def one_thread():
    """The tests use tiny tensors: one intra-op thread is faster than two
    (threads wait on each other at every op), and far faster on a busy CPU."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Tests may init_default_scope('mmseg') etc.; never let that leak into
    the next test (a registry's build follows the current default scope)."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


@pytest.fixture(scope='session')
def demo_digits(tmp_path_factory):
    """The embedded classification demo data, written once per session."""
    from mmpvg.demo import make_digits_classification
    root = str(tmp_path_factory.mktemp('data') / 'demo_digits')
    make_digits_classification(root)
    return root


@pytest.fixture(scope='session')
def demo_shapes_coco(tmp_path_factory):
    """The embedded detection demo data (COCO format), written once."""
    from mmpvg.demo import make_shapes_coco
    root = str(tmp_path_factory.mktemp('data') / 'demo_shapes_coco')
    make_shapes_coco(root)
    return root


# Modules whose tests train or evaluate through the tools (minutes each, the
# detection demo the longest). Started first, longest first, so that with
# `pytest -n 2` (tools/run_tests.sh) both workers finish at about the same
# time instead of one starting a long training when the other is done.
LONG_MODULES = (
    'test_detection_demo.py', 'test_upstream_tools.py',
    'test_checkpoint_loading.py', 'test_resume.py',
    'test_compare_pe_modes.py', 'test_train_test.py',
    'test_segmentation_demo.py', 'test_family_demos_t2t.py',
    'test_dist_train.py', 'test_family_demos_ceit.py',
    'test_family_demos_swin.py',
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
