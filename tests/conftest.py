import os
import sys
import tempfile

import pytest
import torch

TESTS = os.path.dirname(os.path.abspath(__file__))
# the tests' helpers, and the benchmark scripts' measurement module
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(os.path.dirname(TESTS), 'tools', 'benchmarks'))
torch.set_num_threads(min(2, os.cpu_count() or 1))
# the data check's cache of file facts: one per test session (tools run as
# subprocesses inherit it), not the user's ~/.cache
os.environ['DTL_MM_CACHE_DIR'] = tempfile.mkdtemp(prefix='dtl_mm_cache_')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
