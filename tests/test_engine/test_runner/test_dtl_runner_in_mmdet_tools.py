"""DTLRunner through mmdet's own tools/train.py (the config's runner_type,
no process-wide change): what our tools refuse is refused there too, resume
takes the newest complete checkpoint, and checkpoints are written through
the atomic file backend."""
import os.path as osp
import subprocess
import sys

import mmdet
import pytest

from dtl_mm.checkpoint import atomic_io
from helpers.tool_utils import DEMO, ROOT, SHORT, copy_run

pytestmark = pytest.mark.slow  # mmdet's train.py as a subprocess

MMDET_TRAIN = osp.join(
    osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')


def mmdet_train(ws, config, *args):
    proc = subprocess.run([sys.executable, MMDET_TRAIN, config, *args],
                          cwd=ws,
                          capture_output=True,
                          text=True,
                          timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_new_run_into_a_finished_work_dir_is_refused(toy_workspace, short_run,
                                                     tmp_path):
    wd = copy_run(short_run('voc'), tmp_path / 'finished')
    before = (wd / 'epoch_1.pth').read_bytes()
    rc, out = mmdet_train(toy_workspace, osp.join(ROOT,
                                                  DEMO['voc']), '--work-dir',
                          str(wd), '--cfg-options', *SHORT['voc'])
    assert rc != 0 and 'already holds 1 checkpoint(s)' in out, out[-3000:]
    assert 'Epoch(train)' not in out
    assert (wd / 'epoch_1.pth').read_bytes() == before


def test_random_frozen_trunk_is_refused(toy_workspace, tmp_path):
    cfg = tmp_path / 'no_opt_in.py'
    cfg.write_text(f'_base_ = {osp.join(ROOT, DEMO["voc"])!r}\n'
                   'allow_random_trunk = False\n')
    rc, out = mmdet_train(toy_workspace, str(cfg), '--work-dir',
                          str(tmp_path / 'wd'), '--cfg-options', *SHORT['voc'])
    assert rc != 0, out[-3000:]
    assert 'no pretrained Swin' in out and 'allow_random_trunk=True' in out
    assert 'Epoch(train)' not in out


def test_resume_with_a_broken_last_checkpoint_and_atomic_saves(
        toy_workspace, short_run, tmp_path):
    """A run killed while mmengine wrote last_checkpoint (outside the file
    backend) leaves it empty: --resume still continues the newest complete
    checkpoint. The saves go through atomic_write, which also removes the
    temporary file an earlier writer left when it was killed mid-save."""
    wd = copy_run(short_run('voc'), tmp_path / 'killed')
    (wd / 'last_checkpoint').write_text('')
    dead = _dead_pid()
    stale = wd / f'.epoch_2.pth.x1.{dead}@{atomic_io.HOST}.tmp'
    stale.write_bytes(b'half a checkpoint')
    rc, out = mmdet_train(toy_workspace, osp.join(ROOT,
                                                  DEMO['voc']), '--work-dir',
                          str(wd), '--resume', '--cfg-options', *SHORT['voc'],
                          'train_cfg.max_epochs=2')
    assert rc == 0, out[-3000:]
    assert f'resuming from {wd / "epoch_1.pth"}' in out
    assert 'last_checkpoint is empty' in out
    assert (wd / 'epoch_2.pth').is_file() and not stale.exists()
    assert (wd / 'last_checkpoint').read_text() == str(wd / 'epoch_2.pth')


def _dead_pid():
    """The pid of a process that has exited."""
    proc = subprocess.Popen(['true'])
    proc.wait()
    return proc.pid
