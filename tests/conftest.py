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
