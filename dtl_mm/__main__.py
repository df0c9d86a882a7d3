"""``python -m dtl_mm VERB ...``: see :mod:`dtl_mm.cli`."""
import sys

from .cli import main

sys.exit(main())
