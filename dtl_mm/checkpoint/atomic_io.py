"""Atomic local writes for mmengine's file I/O (checkpoints, last_checkpoint).

mmengine writes a checkpoint with ``open(path, 'wb').write(...)``: a run
killed mid-write leaves a truncated file under the final name, and the next
``--resume`` picks it up. Writing to a temporary file in the same folder and
``os.replace``-ing it makes each file appear whole or not at all.

The temporary file is named ``.<name>.<random>.<pid>@<host>.tmp``: a writer
killed mid-save (SIGKILL, node failure) leaves one behind, and the next
writer into that folder removes the ones whose process is gone from this
host, never those of a run still alive (or of another host, which it cannot
see).

A config selects it by name for its checkpoints, as mmengine selects any
file backend: ``default_hooks.checkpoint.backend_args =
dict(backend='atomic_local')`` (every shipped config does, in
``configs/_base_/dtl_common.py``). mmengine's ``local`` backend is left as
it is. CheckpointHook's ``last_checkpoint`` (the name of the newest
checkpoint) is written outside the file backend; a run that resumes with
``DTLRunner`` does not trust it: it takes the newest complete checkpoint
file when that name is missing, empty or names no file
(:mod:`dtl_mm.checkpoint.resume`).
"""
import errno
import os
import os.path as osp
import re
import socket
import tempfile

from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging import print_log

HOST = socket.gethostname()
TEMP_NAME = re.compile(r'^\..+\.(\d+)@(.+)\.tmp$')
_swept = set()  # folders already cleaned by this process


def _umask():
    """The process umask, read without changing it (which would race with
    other threads creating files)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_temp_files(folder):
    """Removes the temporary files this writer left in ``folder`` when its
    process died mid-write; returns their paths."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = TEMP_NAME.match(name)
        if m and m.group(2) == HOST and not _alive(int(m.group(1))):
            path = osp.join(folder, name)
            try:
                os.remove(path)
                removed.append(path)
            except OSError:
                pass  # removed meanwhile, or not ours to remove
    if removed:
        print_log(
            f'removed {len(removed)} temporary files of interrupted '
            f'saves: {removed}',
            logger='current')
    return removed


def atomic_write(data, filepath, mode='wb', encoding=None):
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    if folder not in _swept:
        _swept.add(folder)
        remove_stale_temp_files(folder)
    fd, tmp = tempfile.mkstemp(
        dir=folder,
        prefix='.' + osp.basename(filepath) + '.',
        suffix=f'.{os.getpid()}@{HOST}.tmp')
    try:
        # mkstemp creates 0600; give the file what open() would (0666 less
        # the umask), so that others can read checkpoints on shared storage
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except OSError as e:
        _remove(tmp)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = 'no space left on the device' if \
                e.errno == errno.ENOSPC else 'disk quota exceeded'
            raise OSError(
                e.errno, f'{reason} while writing {filepath} '
                f'({len(data) / 2**20:.1f} MiB); the previous '
                f'file of that name, if any, is unchanged', filepath) from e
        if e.filename is None:
            raise OSError(e.errno, f'{e.strerror} while writing {filepath}',
                          filepath) from e
        raise
    except BaseException:
        _remove(tmp)
        raise


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose writes are atomic
    (:func:`atomic_write`)."""

    def put(self, obj, filepath):
        atomic_write(obj, filepath)

    def put_text(self, obj, filepath, encoding='utf-8'):
        atomic_write(obj, filepath, 'w', encoding)
