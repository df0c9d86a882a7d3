"""What is learnt about each data file, cached: image headers and label
maps, keyed on disk by path, size and modification time (``FileFacts``), so
that checking unchanged data again reads nothing but the files' ``stat``;
and the error the data checks raise."""
import json
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mmengine.logging import print_log
from PIL import Image

WRAPPERS = ('RepeatDataset', 'ConcatDataset', 'ClassBalancedDataset',
            'MultiImageMixDataset')
EXAMPLES = 5  # offending items named per error / warning
EXIF_ORIENTATION = 0x0112


class DataError(ValueError):
    """Broken or inconsistent data; the message names the file."""


def show(path):
    """A path as text, also when its name is not valid UTF-8 (``os``
    functions hand such names back with surrogate escapes, which cannot be
    printed or logged)."""
    return os.fsencode(path).decode('utf-8', 'backslashreplace')


def some_of(items):
    items = list(items)
    more = f' (and {len(items) - EXAMPLES} more)' if len(
        items) > EXAMPLES else ''
    return '; '.join(str(i) for i in items[:EXAMPLES]) + more


def read_text(path):
    """A text file's content; not UTF-8 is a ``DataError`` naming the line
    (mmengine and pycocotools read these files as UTF-8 too)."""
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as e:
        line = raw.count(b'\n', 0, e.start) + 1
        col = e.start - (raw.rfind(b'\n', 0, e.start) + 1) + 1
        raise DataError(
            f'{show(path)}: not UTF-8 text: byte 0x{raw[e.start]:02x} at '
            f'line {line}, column {col} (re-save the file as UTF-8)') from None


# ------------------------------------------------------------ file facts
def image_header(path):
    """(width, height) as the loaders (mmcv with OpenCV, which applies the
    EXIF orientation) will see it, and the stored (width, height), from the
    header only."""
    with Image.open(path) as img:
        w, h = img.size
        orient = 1
        if img.format in ('JPEG', 'MPO') and 'exif' in img.info:
            orient = img.getexif().get(EXIF_ORIENTATION, 1)
    return ((h, w) if orient in (5, 6, 7, 8) else (w, h)), (w, h)


def label_facts(path, backend='pillow'):
    """(width, height, channels, sorted label values) of a label map, decoded
    as mmseg's LoadAnnotations decodes it."""
    if backend == 'pillow':
        with Image.open(path) as img:
            label = np.asarray(img)
    else:
        import cv2

        # cv2.imread cannot take every file name (non-UTF-8 names crash
        # it): decode the bytes, as mmcv does
        with open(path, 'rb') as f:
            buf = np.frombuffer(f.read(), np.uint8)
        label = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if label is None:
            raise ValueError('not an image OpenCV can decode')
    channels = 1 if label.ndim == 2 else label.shape[2]
    if channels == 1 and label.dtype == np.uint8:
        values = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    else:
        values = np.unique(label)
    return label.shape[1], label.shape[0], channels, values.tolist()


def cache_dir():
    return os.environ.get('DTL_MM_CACHE_DIR') or osp.join(
        os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache'),
        'dtl_mm')


class FileFacts:
    """What was learnt about each file, kept on disk between runs.

    An entry is reused only while the file has the same size and
    modification time, so facts are never stale; verdicts are always
    recomputed from the facts. ``DTL_MM_CACHE_DIR`` moves the cache (set it
    to an empty folder to start afresh).
    """

    def __init__(self, name):
        self.path = osp.join(cache_dir(), f'preflight-{name}.json')
        self.entries, self.dirty = {}, False
        try:
            with open(self.path) as f:
                self.entries = json.load(f)
        except (OSError, ValueError):
            pass  # no cache yet, or an unreadable one: start afresh

    def _key(self, kind, path, extra):
        st = os.stat(path)
        return (f'{kind}:{show(osp.abspath(path))}:{extra}',
                [st.st_size, st.st_mtime_ns])

    def get(self, kind, path, compute, extra=''):
        key, stamp = self._key(kind, path, extra)
        hit = self.entries.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = compute(path)
        self.entries[key] = [stamp, value]
        self.dirty = True
        return value

    def many(self, kind, paths, compute, extra=''):
        """``get`` for many files; the misses are read by a few threads (the
        decoders release the GIL, and on network file systems the reads
        overlap). A file that cannot be read gives its exception."""
        results = [None] * len(paths)
        todo = []
        for i, p in enumerate(paths):
            try:
                key, stamp = self._key(kind, p, extra)
            except OSError as e:
                results[i] = e
                continue
            hit = self.entries.get(key)
            if hit is not None and hit[0] == stamp:
                results[i] = hit[1]
            else:
                todo.append((i, key, stamp))

        def read(item):
            try:
                return compute(paths[item[0]])
            except Exception as e:  # reported by the caller, with the file
                return e

        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            for (i, key, stamp), value in zip(todo, pool.map(read, todo)):
                results[i] = value
                if not isinstance(value, Exception):
                    self.entries[key] = [stamp, value]
                    self.dirty = True
        return results

    @staticmethod
    def _stamps(paths):
        stamps = []
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                return None
            stamps.append([st.st_size, st.st_mtime_ns])
        return stamps

    def digest(self, kind, path, compute, extra=''):
        """``get`` for what is drawn from several files (a data set's
        annotation file and, for VOC, its XML files): ``compute(path)``
        returns (value, the files it read); the entry is reused while none
        of them changed."""
        key = f'{kind}:{show(osp.abspath(path))}:{extra}'
        hit = self.entries.get(key)
        if hit is not None and len(hit) == 3 and \
                hit[0] == self._stamps(hit[2]):
            return hit[1]
        value, files = compute(path)
        files = [osp.abspath(f) for f in files]
        stamps = self._stamps(files)
        if stamps is not None:
            self.entries[key] = [stamps, value, files]
            self.dirty = True
        return value

    def save(self):
        if not self.dirty:
            return
        from ..checkpoint.atomic_io import atomic_write
        try:
            atomic_write(json.dumps(self.entries), self.path, 'w', 'utf-8')
        except OSError as e:  # a cache must never stop a run
            print_log(
                f'data check cache not written ({e})',
                logger='current',
                level=30)
