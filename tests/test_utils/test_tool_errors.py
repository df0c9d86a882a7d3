"""The tools end on a check's error with its message and no traceback;
an error no check raised (a bug) keeps its traceback."""
import json
import os
import subprocess
import sys

import pytest
import torch

from dtl_mm.models.recompute import check_cp_policy
from dtl_mm.utils.tool_errors import raised_by_a_check
from helpers.tool_utils import DEMO, ROOT, tool


def caught(fn):
    try:
        fn()
    except Exception as e:  # what the test looks at
        return e
    raise AssertionError('no error raised')


def test_a_checks_error_is_told_from_a_bug():
    assert raised_by_a_check(caught(lambda: check_cp_policy('sometimes')))
    # raised by json: not a check of ours
    assert not raised_by_a_check(caught(lambda: json.loads('{')))

    def rewrapped():  # as mmengine's builder re-raises a build error
        try:
            check_cp_policy('sometimes')
        except ValueError as e:
            raise ValueError(f'class `X` in x.py: {e}')

    assert raised_by_a_check(caught(rewrapped))

    def bug_in_the_handler():  # a library error while handling a check's
        try:
            check_cp_policy('sometimes')
        except ValueError:
            json.loads('{')

    assert not raised_by_a_check(caught(bug_in_the_handler))
    # a failing lookup or torch operation in dtl_mm is a bug, not a check
    from dtl_mm.models.side_network import to_map
    assert not raised_by_a_check(
        caught(lambda: to_map(torch.zeros(1, 5, 2), (2, 2))))


@pytest.mark.slow
@pytest.mark.parametrize('show', [False, True])
def test_train_stops_on_a_bad_option_with_one_message(tmp_path, show):
    env = dict(os.environ, PYTHONPATH=ROOT)
    if show:
        env['DTL_MM_TRACEBACK'] = '1'
    proc = subprocess.run([
        sys.executable,
        tool('train.py'),
        os.path.join(ROOT, DEMO['voc']), '--work-dir',
        str(tmp_path / 'work'), '--skip-data-check', '--cfg-options',
        'model.backbone.with_cp=x'
    ],
                          capture_output=True,
                          text=True,
                          env=env,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'with_cp must be False, True or "selective"' in proc.stderr
    assert ('Traceback' in proc.stderr) == show
