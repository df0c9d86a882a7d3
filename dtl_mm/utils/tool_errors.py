"""How the tools end on bad input: one line naming what was wrong, not a
traceback.

dtl_mm's checks (configs, data, checkpoints, options) raise with a message
written for the user; a traceback around it only buries it. An error that
dtl_mm's own code (or the tool's) did not raise is a bug somewhere, and
keeps its traceback. ``DTL_MM_TRACEBACK=1`` shows every traceback.
"""
import os
import os.path as osp
import sys
from typing import Callable

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
# what the checks raise (their own classes derive from these)
USER_ERRORS = (ValueError, TypeError, RuntimeError, FileNotFoundError,
               ImportError, IndexError, KeyError)


def _raised_in(exc: BaseException, folders) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    where = osp.abspath(tb.tb_frame.f_code.co_filename)
    return any(where.startswith(folder + os.sep) for folder in folders)


def raised_by_a_check(exc: BaseException, folders=(PACKAGE_DIR, )) -> bool:
    """``exc``, or an exception it was raised while handling (mmengine
    re-raises build errors with the class named), was raised by code in
    ``folders``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _raised_in(exc, folders):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def run_tool(main: Callable):
    """Runs a tool's ``main``; a check's error ends the process with its
    message (exit status 1)."""
    folders = (PACKAGE_DIR,
               osp.dirname(osp.abspath(main.__code__.co_filename)))
    try:
        return main()
    except USER_ERRORS as e:
        if os.environ.get('DTL_MM_TRACEBACK') or \
                not raised_by_a_check(e, folders):
            raise
        message = str(e.args[0]) if isinstance(e, KeyError) and e.args \
            else str(e)
        sys.exit(f'{type(e).__name__}: {message}\n(DTL_MM_TRACEBACK=1 shows '
                 f'where it was raised)')
