# Copyright (c) mmpvg contributors. All rights reserved.
import pytest

from mmpvg.utils.errors import InputError, one_line_errors


def test_a_bad_input_is_one_line(capsys, monkeypatch):
    monkeypatch.delenv('MMPVG_DEBUG', raising=False)
    with pytest.raises(SystemExit) as exit_info:
        with one_line_errors('train.py'):
            raise KeyError('MPVGVit is not in the mmpretrain::model registry')
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        'train.py: error: MPVGVit is not in the mmpretrain::model '
        'registry\n')


def test_only_the_given_errors_are_shortened(monkeypatch):
    monkeypatch.delenv('MMPVG_DEBUG', raising=False)
    # a running job: only InputError is the user's; a bug keeps its trace
    with pytest.raises(ZeroDivisionError):
        with one_line_errors('train.py', InputError):
            1 / 0
    with pytest.raises(SystemExit):
        with one_line_errors('train.py', InputError):
            raise InputError('data cannot be evaluated')


def test_debug_keeps_the_traceback(monkeypatch):
    monkeypatch.setenv('MMPVG_DEBUG', '1')
    with pytest.raises(ValueError, match='patch_size'):
        with one_line_errors('train.py'):
            raise ValueError('patch_size must be >= 1')
