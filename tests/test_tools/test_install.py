"""tools/install.sh in a user's own environment: it checks, says what it
would change, and replaces nothing without consent.

Runs the script against the test environment itself, as an active
virtualenv; pip is cut off from every package source, so a bug could not
change the environment either.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest

from helpers.tool_utils import ROOT

INSTALL = osp.join(ROOT, 'tools', 'install.sh')


def run_install(*args):
    bin_dir = osp.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != 'PIP_FIND_LINKS'}
    env.update(
        VIRTUAL_ENV=sys.prefix,
        PIP_NO_INDEX='1',
        PIP_CONFIG_FILE=os.devnull,
        PATH=bin_dir + os.pathsep + os.environ['PATH'])
    proc = subprocess.run(['bash', INSTALL, *args],
                          capture_output=True,
                          text=True,
                          stdin=subprocess.DEVNULL,
                          env=env,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow  # tools/install.sh's whole check, end to end
def test_installed_stack_checks_without_changing_anything():
    rc, out, err = run_install('--stack', 'installed')
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == sys.executable
    for dist in ('torch', 'numpy', 'mmengine', 'mmcv', 'mmdet',
                 'mmsegmentation'):
        assert f'ok       {dist} ' in out, out
    assert 'environment ready' in err


def test_replacing_needs_consent():
    """The test environment has today's torch and numpy; the torch 2.1
    stack would replace both, which the script must not do unasked."""
    from importlib.metadata import version
    rc, out, err = run_install('--stack', 'torch2.1')
    assert rc == 1, err
    assert f'will replace: torch {version("torch")} torchvision ' \
        f'{version("torchvision")} numpy {version("numpy")}' in err
    assert 'not replacing packages in your environment without --yes' in err
    assert 'nothing was changed' in err
    assert 'installing' not in err


def test_floor_stack_plans_torch_with_its_torchvision():
    """The torch 2.1 stack needs a torchvision built for its torch (for
    mmpretrain's ViTs): both are planned together, and nothing is replaced
    in a user's environment unasked."""
    from importlib.metadata import version
    rc, out, err = run_install('--stack', 'torch2.1')
    assert rc == 1, err
    plan = next(ln for ln in err.splitlines() if 'will install:' in ln)
    assert 'torch==2.1.2 torchvision==0.16.2' in plan
    assert f'will replace: torch {version("torch")}' in err
    assert 'nothing was changed' in err and 'installing' not in err
