# Copyright (c) mmpvg contributors. All rights reserved.
"""How the command lines report what a user got wrong: one line, no trace.

A bad config value, argument, file or data set is the user's to fix, and a
traceback through mmengine's builders only hides the sentence that says
what to fix. A bug is ours, and keeps its traceback.
"""
import os
import sys
from contextlib import contextmanager

__all__ = ['InputError', 'one_line_errors']

# What building a run from a config raises for a bad input: mmpvg's own
# checks (ValueError, TypeError), mmengine's registry (KeyError: an unknown
# type; TypeError: an unknown argument), a missing file, a missing package.
BUILD_ERRORS = (ValueError, TypeError, KeyError, OSError, ImportError)


class InputError(ValueError):
    """A bad input found while a run is under way (a checkpoint that does
    not fit or is no checkpoint, data that cannot be evaluated): reported
    as one line at any time, unlike other errors of a running job."""


@contextmanager
def one_line_errors(prog: str, errors=BUILD_ERRORS):
    """Turn ``errors`` raised in the block into ``prog: error: message``
    on stderr and exit status 1.

    ``MMPVG_DEBUG=1`` in the environment keeps the traceback.

    Args:
        prog (str): The command's name, the start of the message.
        errors (tuple[type]): The exception classes reported this way.
    """
    if os.environ.get('MMPVG_DEBUG', '') not in ('', '0'):
        yield
        return
    try:
        yield
    except errors as e:
        # KeyError's str() is the repr of its argument: show the sentence
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        sys.stderr.write(f'{prog}: error: {message}\n')
        sys.exit(1)
