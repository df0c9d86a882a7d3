"""One safe way in for every checkpoint the process reads.

Unpickling a checkpoint can run code. Every checkpoint dtl_mm or mmengine
reads (pretrained Swin, ``load_from``, ``--resume``, ``tools/test.py``,
mmdet's and mmseg's own tools through a config's ``custom_imports``) goes
through :func:`load_checkpoint_file`: a local path, a ``~`` path or an
http(s) URL (downloaded once into torch's hub cache, then read from disk).
Only tensors, plain containers and the few types mmengine's own training
checkpoints hold (its ``HistoryBuffer`` of numpy arrays in the message hub,
``Counter`` milestones in schedulers) are unpickled:

- torch >= 2.4: ``torch.load(weights_only=True)`` with exactly those types
  added to its allow-list;
- older torch (no ``add_safe_globals``; before 2.6 ``weights_only`` is off
  by default): a restricted unpickler with the same allow-list, passed
  explicitly.

numpy 1.x and 2.x name their pickling helpers differently
(``numpy.core`` / ``numpy._core``); both names are accepted so a checkpoint
saved under one loads under the other.
"""
import collections
import contextlib
import functools
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import types
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import _compat_pickle
import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer

from .errors import CheckpointError


# -------------------------------------------------------- allowed types
def _numpy_core():
    # numpy 1.26 also has a ``numpy._core``, but only an empty stub for
    # reading numpy 2 pickles; numpy 2 deprecates ``numpy.core``
    if np.lib.NumpyVersion(np.__version__) >= '2.0.0':
        return np._core
    return np.core


def _numpy_pickle_globals():
    """(object, 'module.name') for numpy's pickling helpers under both the
    numpy 1 and the numpy 2 module names."""
    multiarray = _numpy_core().multiarray
    pairs = []
    for name in ('_reconstruct', 'scalar'):
        obj = getattr(multiarray, name)
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            pairs.append((obj, f'{module}.{name}'))
    return pairs


def _numpy_dtype_classes():
    return sorted(
        {
            type(np.dtype(t))
            for t in ('float16', 'float32', 'float64', 'int8', 'int16',
                      'int32', 'int64', 'uint8', 'uint32', 'bool')
        },
        key=lambda c: c.__name__)


def _history_buffer_method(obj, name):
    """The one ``getattr`` mmengine checkpoints need: ``HistoryBuffer``
    pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``.
    Any other target or name is refused, so this is no general getattr."""
    if obj is HistoryBuffer and (name in ('min', 'max', 'current', 'mean')
                                 or name in HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def mmengine_checkpoint_types():
    """The non-tensor types an mmengine (0.10.x) training checkpoint holds."""
    return [
        HistoryBuffer, collections.Counter, np.ndarray, np.dtype,
        *_numpy_dtype_classes()
    ]


@functools.lru_cache(maxsize=None)
def _allowed_globals():
    """'module.name' -> object, for everything besides torch's own types
    (built once: the restricted unpickler asks for every global)."""
    allowed = {
        f'{c.__module__}.{c.__qualname__}': c
        for c in mmengine_checkpoint_types()
    }
    allowed.update({name: obj for obj, name in _numpy_pickle_globals()})
    allowed['builtins.getattr'] = _history_buffer_method
    return allowed


@functools.lru_cache(maxsize=None)
def allow_mmengine_types_in_torch_load():
    """Extends torch's weights-only allow-list with the types mmengine
    checkpoints hold, once (torch >= 2.4; a no-op before)."""
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return
    torch.serialization.add_safe_globals([
        (obj, name) if name != f'{obj.__module__}.{obj.__qualname__}' else obj
        for name, obj in _allowed_globals().items()
    ])


class _RestrictedUnpickler(pickle.Unpickler):
    """For torch < 2.4: the same allow-list, enforced by ``find_class``.
    torch's own loader resolves storages before calling it."""

    def find_class(self, module, name):
        # protocol 2 writes Python 2 names (__builtin__.getattr)
        module, name = _compat_pickle.NAME_MAPPING.get(
            (module, name),
            (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        full = f'{module}.{name}'
        allowed = _allowed_globals()
        if full in allowed:
            return allowed[full]
        if (module == 'collections' and name == 'OrderedDict') or \
                (module == 'torch._utils' and name.startswith('_rebuild')) \
                or full in ('_codecs.encode',  # protocol 2's bytes
                            'builtins.set', 'builtins.frozenset',
                            'builtins.bytearray',
                            'torch._tensor._rebuild_from_type_v2',
                            'torch.nn.parameter.Parameter', 'torch.Size',
                            'torch.device', 'torch.serialization._get_layout'):
            return super().find_class(module, name)
        if module == 'torch' and isinstance(
                getattr(torch, name, None), (torch.dtype, torch.layout)):
            return getattr(torch, name)
        raise pickle.UnpicklingError(
            f'Weights only load failed: Unsupported global: GLOBAL {full}')


def _restricted_load(f, **kwargs):
    # torch's legacy (non-zip) format reads a few pickles with ``load``
    return _RestrictedUnpickler(f, **kwargs).load()


_restricted_pickle = types.SimpleNamespace(
    Unpickler=_RestrictedUnpickler,
    load=_restricted_load,
    __name__='dtl_mm_restricted_pickle')


def _torch_load(f, map_location):
    if hasattr(torch.serialization, 'add_safe_globals'):
        allow_mmengine_types_in_torch_load()
        return torch.load(f, map_location=map_location, weights_only=True)
    # weights_only=False is explicit: the restricted unpickler does the job
    return torch.load(
        f,
        map_location=map_location,
        weights_only=False,
        pickle_module=_restricted_pickle)


# ---------------------------------------------------------------- loading
# the file each recently loaded checkpoint object came from, for messages
# of code that gets the object only (mmengine's after_load_checkpoint hooks)
_SOURCES = collections.OrderedDict()


def checkpoint_source(checkpoint) -> str:
    """The file or URL a checkpoint object was loaded from, if known."""
    return _SOURCES.get(id(checkpoint), 'the checkpoint')


def _remember_source(checkpoint, name):
    _SOURCES[id(checkpoint)] = name
    while len(_SOURCES) > 8:
        _SOURCES.popitem(last=False)


def _is_url(filename: str) -> bool:
    return filename.startswith(('http://', 'https://'))


def load_checkpoint_file(filename: str,
                         map_location='cpu',
                         require_dict: bool = True):
    """Loads a checkpoint from a path, a ``~`` path or an http(s) URL, safely,
    with errors that name the file (and the URL)."""
    name = filename
    if _is_url(filename):
        filename = download_checkpoint(filename)
        name = f'{name} (cached as {filename})'
    else:
        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            raise FileNotFoundError(f'checkpoint file not found: {filename}')
    with open(filename, 'rb') as f:
        checkpoint = load_checkpoint_bytes(f, name, map_location)
    if require_dict and not isinstance(checkpoint, dict):
        raise CheckpointError(
            f'{name}: not a checkpoint: it holds a {type(checkpoint).__name__}'
            f', expected a dict (a state dict, or a training checkpoint with '
            f'"state_dict" / "model")')
    _remember_source(checkpoint, name)
    return checkpoint


def load_checkpoint_bytes(f, name: str, map_location='cpu'):
    """``_torch_load`` of an open binary file; ``name`` is used in errors."""
    head = f.read(4)
    f.seek(0)
    if not head.startswith(b'PK') and not head.startswith(b'\x80'):
        # neither torch's zip format nor a pickle (legacy torch format)
        raise CheckpointError(
            f'{name}: not a checkpoint file (neither a torch zip archive nor '
            f'a pickle; starts with {head!r})')
    try:
        return _torch_load(f, map_location)
    except pickle.UnpicklingError as e:
        msg = str(e)
        found = re.search(r'GLOBAL (\S+)', msg)
        if 'Weights only load failed' in msg and found:
            raise CheckpointError(
                f'{name}: refused to load: it contains a Python object '
                f'({found.group(1).rstrip(".,")}) other than tensors and the '
                f'types mmengine checkpoints use, and unpickling it could run '
                f'code. Only tensors, plain containers, numpy arrays, '
                f'HistoryBuffer and Counter are accepted.') from None
        raise CheckpointError(
            f'{name}: corrupt checkpoint (cannot be unpickled: '
            f'{msg.splitlines()[0][:200]})') from None
    except (EOFError, zipfile.BadZipFile, RuntimeError, ValueError,
            KeyError) as e:
        raise CheckpointError(
            f'{name}: truncated or corrupt checkpoint file '
            f'({type(e).__name__}: {str(e)[:200]})') from None


# ------------------------------------------------------------- downloads
def cached_checkpoint_path(url: str) -> str:
    """Where ``url`` is cached: ``$TORCH_HOME/hub/checkpoints/dtl_mm/<sha256
    of the URL, 16 hex digits>/<file name>``. Two URLs with one file name
    (``http://host/a/swin.pth``, ``http://host/b/swin.pth``) are two
    entries; torch hub's name-only key would hand one the other's weights.
    """
    name = osp.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise CheckpointError(f'{url}: the URL names no file')
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return osp.join(torch.hub.get_dir(), 'checkpoints', 'dtl_mm', key, name)


def download_checkpoint(url: str, progress: bool = True) -> str:
    """Downloads ``url`` once into torch's hub cache and returns the path.

    torch's ``download_url_to_file`` does the transfer (and its check of a
    ``-<sha256 prefix>`` in the file name, torch hub's convention). It
    accepts a body shorter than the server announced (Python's http client
    ends a short read silently), so the file appears under its final name
    only after our checks: the length matches the server's
    ``Content-Length`` and a torch zip archive reads to its end with valid
    CRCs. Otherwise nothing is cached and the error names the URL and the
    cache file.

    Processes that want the same URL at once (the ranks of a distributed
    run on one machine) take turns on a lock file beside the cache entry:
    the first downloads, the others wait and then read the cached file
    (``flock``: per machine, and across machines on file systems that
    support it).
    """
    path = cached_checkpoint_path(url)
    if osp.isfile(path):
        return path
    os.makedirs(osp.dirname(path), exist_ok=True)
    with _download_lock(path, url):
        if osp.isfile(path):  # another process fetched it meanwhile
            return path
        tmp = f'{path}.{os.getpid()}.partial'
        print_log(f'Downloading {url} to {path}', logger='current')
        try:
            expected = _announced_length(url)
            try:
                torch.hub.download_url_to_file(
                    url, tmp, _hash_prefix(path), progress=progress)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise CheckpointError(
                    f'{url}: download failed or interrupted ({e}); nothing '
                    f'was cached at {path}') from None
            except RuntimeError as e:  # torch: the hash in the name
                raise CheckpointError(
                    f'{url}: the downloaded file is not valid ({e}, from '
                    f'the hash in its name); nothing was cached at '
                    f'{path}') from None
            _verify_download(url, path, tmp, expected)
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)
    return path


def _hash_prefix(path):
    """torch hub's hash-in-name rule (``name-<hex>.ext``), taken only when
    the hex part is at least 8 digits: ``swin-b.pth``'s ``b`` is a name,
    not a hash."""
    found = torch.hub.HASH_REGEX.search(osp.basename(path))
    return found.group(1) if found and len(found.group(1)) >= 8 else None


def _announced_length(url):
    """The server's ``Content-Length`` for ``url`` (a HEAD request), or
    None when it gives none or refuses HEAD: the zip check remains."""
    request = urllib.request.Request(url, method='HEAD')
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            length = response.headers.get('Content-Length')
    except urllib.error.HTTPError:
        return None  # HEAD not allowed here; the GET says what is wrong
    except (urllib.error.URLError, OSError) as e:
        raise CheckpointError(f'{url}: download failed: {e}') from None
    return int(length) if length and length.isdigit() else None


@contextlib.contextmanager
def _download_lock(path, url):
    """An exclusive ``flock`` on ``<entry folder>.lock`` (released when the
    process dies, so a killed download never blocks the next one)."""
    import fcntl
    with open(osp.dirname(path) + '.lock', 'a') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print_log(
                f'waiting for another process downloading {url} to {path}',
                logger='current')
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def starts_as_zip(path) -> bool:
    """The file starts as a zip archive, torch.save's format (torch's
    legacy format is a bare pickle)."""
    with open(path, 'rb') as f:
        return f.read(2) == b'PK'


def _verify_download(url, path, tmp, expected):
    size = osp.getsize(tmp)
    if expected is not None and size != expected:
        raise CheckpointError(
            f'{url}: incomplete download: {size} of {expected} bytes; '
            f'nothing was cached at {path}')
    fail = f'{url}: the downloaded file is not valid ({{}}); nothing was ' \
           f'cached at {path}'
    if starts_as_zip(tmp):
        try:
            with zipfile.ZipFile(tmp) as z:
                bad = z.testzip()
        except zipfile.BadZipFile as e:
            raise CheckpointError(
                fail.format(f'truncated or corrupt zip archive, {size} '
                            f'bytes: {e}')) from None
        if bad is not None:
            raise CheckpointError(fail.format(f'CRC error in {bad}'))


def load_checkpoint_buffer(name, data, map_location='cpu'):
    """The safe load of a checkpoint held in memory (object storage)."""
    return load_checkpoint_bytes(io.BytesIO(data), name, map_location)
