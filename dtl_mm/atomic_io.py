"""Atomic local writes for mmengine's file I/O (checkpoints, last_checkpoint).

mmengine writes a checkpoint with ``open(path, 'wb').write(...)``: a run
killed mid-write leaves a truncated file under the final name, and the next
``--resume`` picks it up. Writing to a temporary file in the same folder and
``os.replace``-ing it makes each file appear whole or not at all.
"""
import os
import os.path as osp
import tempfile

from mmengine.fileio.backends import LocalBackend, register_backend


def atomic_write(data, filepath, mode='wb', encoding=None):
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' +
                               osp.basename(filepath) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


class AtomicLocalBackend(LocalBackend):

    def put(self, obj, filepath):
        atomic_write(obj, filepath)

    def put_text(self, obj, filepath, encoding='utf-8'):
        atomic_write(obj, filepath, 'w', encoding)


register_backend('local', AtomicLocalBackend, force=True, prefixes='')
