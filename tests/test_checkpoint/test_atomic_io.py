"""Checkpoint writing: whole or nothing, umask, stale temporary files, a
full disk."""
import errno
import os
import subprocess
import sys
import time

import pytest
import torch
from mmengine.runner import checkpoint as mm_checkpoint

from dtl_mm.checkpoint import atomic_io
from dtl_mm.checkpoint.atomic_io import AtomicLocalBackend
from dtl_mm.checkpoint.safe_load import load_checkpoint_file
from helpers.tool_utils import ROOT

# what the shipped configs' CheckpointHook passes to the runner's save
ATOMIC = dict(backend='atomic_local')


def save_checkpoint(checkpoint, path):
    mm_checkpoint.save_checkpoint(checkpoint, path, backend_args=ATOMIC)


# ------------------------------------------------------ checkpoint writing
def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, path)

    def crash(fd):  # the process dies after writing, before the rename
        raise KeyboardInterrupt('killed mid-save')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(
        load_checkpoint_file(path)['state_dict']['w'], torch.ones(3))
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temp file left
    assert isinstance(
        __import__('mmengine').fileio.get_file_backend(
            path, backend_args=ATOMIC), AtomicLocalBackend)


@pytest.mark.slow  # runs the tools as subprocesses
def test_killed_save_never_leaves_a_truncated_file(tmp_path, monkeypatch):
    path = tmp_path / 'big.pth'
    code = ('import dtl_mm, torch, sys\n'
            'from mmengine.runner.checkpoint import save_checkpoint\n'
            'print("go", flush=True)\n'
            'save_checkpoint({"w": torch.ones(120_000_000)}, '
            f'{str(path)!r}, backend_args={ATOMIC!r})\n')
    proc = subprocess.Popen([sys.executable, '-c', code],
                            stdout=subprocess.PIPE,
                            text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.readline().strip() == 'go'
    deadline, writing = time.time() + 120, False
    try:  # wait until the write is under way
        while not writing and time.time() < deadline and \
                proc.poll() is None:
            writing = any(f.name.endswith('.tmp') for f in tmp_path.iterdir())
            time.sleep(0.005)
        assert writing, 'the temporary file of the save was never seen'
        assert not path.exists() and proc.poll() is None, \
            'the save ended before it could be killed'
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert not path.exists()  # whole or nothing: here nothing
    left = [f.name for f in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].endswith(
        f'.{proc.pid}@{atomic_io.HOST}.tmp')
    # the next writer into that folder removes what the dead one left
    monkeypatch.setattr(atomic_io, '_swept', set())
    save_checkpoint({'w': torch.ones(1)}, str(path))
    assert [f.name for f in tmp_path.iterdir()] == ['big.pth']


def test_checkpoint_mode_honours_the_umask(tmp_path):
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        old = os.umask(umask)
        try:
            path = tmp_path / f'epoch_{umask}.pth'
            save_checkpoint({'state_dict': {'w': torch.ones(1)}}, str(path))
        finally:
            os.umask(old)
        assert path.stat().st_mode & 0o777 == mode


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path, monkeypatch):
    dead = subprocess.Popen(['true'])
    dead.wait()
    names = {
        'dead': f'.epoch_1.pth.ab12.{dead.pid}@{atomic_io.HOST}.tmp',
        'alive': f'.epoch_2.pth.cd34.{os.getpid()}@{atomic_io.HOST}.tmp',
        'other_host': f'.epoch_3.pth.ef56.{dead.pid}@elsewhere.tmp',
        'not_ours': '.notes.tmp',
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b'partial')
    monkeypatch.setattr(atomic_io, '_swept', set())  # a new process
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'epoch_4.pth'))
    left = set(os.listdir(tmp_path))
    assert names['dead'] not in left
    assert {
        names['alive'], names['other_host'], names['not_ours'], 'epoch_4.pth'
    } == left


def test_disk_full_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    good = path.read_bytes()
    real_fdopen = os.fdopen

    def full_disk(fd, mode, **kw):  # the kernel's own ENOSPC
        os.close(fd)
        return real_fdopen(os.open('/dev/full', os.O_WRONLY), mode, **kw)

    monkeypatch.setattr(os, 'fdopen', full_disk)
    with pytest.raises(
            OSError,
            match=rf'no space left on the device while '
            rf'writing {path} \(\d+\.\d MiB\); the previous file'
            rf' .* is unchanged') as e:
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(path))
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ['epoch_1.pth']
