"""Safe checkpoint loading for mmengine checkpoints on torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True``: only tensors and allow-listed
types are unpickled, so a checkpoint cannot run code. mmengine 0.10.7's own
checkpoints hold a few more types (its ``HistoryBuffer`` of numpy arrays in
the message hub, ``Counter`` milestones in schedulers), and fail to load.
We allow exactly those types instead of turning safe loading off, and route
mmengine's local-file loader through a loader whose errors name the file.
"""
import collections
import os
import pickle
import zipfile

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used; the message names the file."""


def mmengine_checkpoint_types():
    """The non-tensor types an mmengine (0.10.x) training checkpoint holds."""
    dtype_classes = {
        type(np.dtype(t))
        for t in ('float16', 'float32', 'float64', 'int8', 'int16', 'int32',
                  'int64', 'uint8', 'uint32', 'bool')
    }
    return [
        HistoryBuffer, collections.Counter, np.ndarray, np.dtype,
        np._core.multiarray._reconstruct, np._core.multiarray.scalar,
        *sorted(dtype_classes, key=lambda c: c.__name__)
    ]


def _history_buffer_method(obj, name):
    """The one ``getattr`` mmengine checkpoints need: ``HistoryBuffer``
    pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``.
    Any other target or name is refused, so this is no general getattr."""
    if obj is HistoryBuffer and (name in ('min', 'max', 'current', 'mean') or
                                 name in HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def allow_mmengine_checkpoint_types():
    torch.serialization.add_safe_globals(
        mmengine_checkpoint_types() +
        [(_history_buffer_method, 'builtins.getattr')])


def load_checkpoint_file(filename: str, map_location='cpu'):
    """``torch.load(weights_only=True)`` with errors that name the file."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as e:
        if 'Weights only load failed' in str(e):
            reason = str(e).split('Please file an issue')[0].strip()
            raise CheckpointError(
                f'{filename}: refused to load: it contains Python objects '
                f'other than tensors and the types mmengine checkpoints use, '
                f'and unpickling them could run code. Only tensors, plain '
                f'containers and {[t.__name__ for t in mmengine_checkpoint_types()[:2]]} '
                f'are accepted. Detail: {reason[-400:]}') from None
        raise CheckpointError(
            f'{filename}: corrupt checkpoint (cannot be unpickled: {e})'
        ) from None
    except (EOFError, zipfile.BadZipFile, RuntimeError) as e:
        raise CheckpointError(
            f'{filename}: truncated or corrupt checkpoint file '
            f'({type(e).__name__}: {str(e)[:200]})') from None


@CheckpointLoader.register_scheme(prefixes='', force=True)
def _load_local(filename, map_location=None):
    # replaces mmengine's plain torch.load for local files (resume, test,
    # load_from): same safety, clearer errors
    return load_checkpoint_file(os.path.expanduser(filename), map_location)
