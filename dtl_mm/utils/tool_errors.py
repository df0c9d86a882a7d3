"""How the tools end on bad input: one line naming what was wrong, not a
traceback.

dtl_mm's checks (configs, data, checkpoints, options) raise with a message
written for the user; a traceback around it only buries it. Such an error
is one raised by a ``raise`` statement of dtl_mm (or of the tool), perhaps
raised again with more context by the library that called it (mmengine's
builder names the class). Anything else (a failing torch operation, a
``KeyError`` from a lookup, an error of a library) is a bug somewhere and
keeps its traceback. ``DTL_MM_TRACEBACK=1`` shows every traceback.
"""
import linecache
import os
import os.path as osp
import sys
from typing import Callable

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
# what the checks raise (their own classes derive from these)
USER_ERRORS = (ValueError, TypeError, RuntimeError, FileNotFoundError,
               ImportError)


def _raised_by_statement_in(exc: BaseException, folders) -> bool:
    """``exc`` was raised by a ``raise`` statement of a file in
    ``folders``."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    where = osp.abspath(tb.tb_frame.f_code.co_filename)
    if not any(where.startswith(folder + os.sep) for folder in folders):
        return False
    return linecache.getline(where, tb.tb_lineno).lstrip().startswith('raise')


def raised_by_a_check(exc: BaseException, folders=(PACKAGE_DIR, )) -> bool:
    """``exc`` was raised by a check in ``folders``, or re-raised with the
    check's message in its own (as mmengine's builder does)."""
    while exc is not None:
        if _raised_by_statement_in(exc, folders):
            return True
        inner = exc.__cause__ or exc.__context__
        if inner is None or str(inner) not in str(exc):
            return False
        exc = inner
    return False


def run_tool(main: Callable):
    """Runs a tool's ``main``; a check's error ends the process with its
    message (exit status 1)."""
    folders = (PACKAGE_DIR,
               osp.dirname(osp.abspath(main.__code__.co_filename)))
    try:
        return main()
    except USER_ERRORS as e:
        if os.environ.get('DTL_MM_TRACEBACK') == '1' or \
                not raised_by_a_check(e, folders):
            raise
        # the message last, as a traceback would end
        print(
            '(DTL_MM_TRACEBACK=1 shows where this was raised)',
            file=sys.stderr)
        sys.exit(f'{type(e).__name__}: {e}')
