"""mmengine's checkpoint loaders, routed through dtl_mm's safe loader.

mmengine picks a loader by the path's prefix (``CheckpointLoader``). Its own
loaders for local files, URLs and model-zoo names end in a plain
``torch.load`` (or ``torch.hub.load_state_dict_from_url``), which on torch
< 2.6 unpickles anything, and the URL one unpickles anything on every torch.
Inside :func:`safe_checkpoint_schemes` each prefix loads through
:func:`dtl_mm.checkpoint.safe_load.load_checkpoint_file` instead: the
``DTLRunner`` runs its training, validation, test and every checkpoint load
in it, so ``load_from``, ``--resume`` and any module's ``init_cfg``
checkpoint are read safely, and leaves mmengine's loaders as they were when
it is done. Model-zoo names (``open-mmlab://``, ``torchvision://``,
``mmcls://``) keep working: they are resolved to their URL as mmengine
does, then downloaded safely.
"""
import os.path as osp
from collections import OrderedDict
from contextlib import contextmanager

from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .safe_load import (CheckpointError, load_checkpoint_buffer,
                        load_checkpoint_file)


def _local_or_url(filename, map_location=None):
    return load_checkpoint_file(filename, map_location or 'cpu')


def _torchvision(filename, map_location=None):
    name = filename.split('://', 1)[1]
    urls = mm_checkpoint.get_torchvision_models()
    return _local_or_url(urls[name], map_location)


def _openmmlab(filename, map_location=None):
    name = filename.split('://', 1)[1]
    name = mm_checkpoint.get_deprecated_model_names().get(name, name)
    url = mm_checkpoint.get_external_models()[name]
    if not url.startswith(('http://', 'https://')):
        url = osp.join(mm_checkpoint._get_mmengine_home(), url)
    return _local_or_url(url, map_location)


def _mmcls(filename, map_location=None):
    url = mm_checkpoint.get_mmcls_models()[filename[len('mmcls://'):]]
    return mm_checkpoint._process_mmcls_checkpoint(
        _local_or_url(url, map_location))


def _object_storage(filename, map_location=None, backend='petrel'):
    from mmengine.fileio import get_file_backend
    data = get_file_backend(
        filename, backend_args={
            'backend': backend
        }).get(filename)
    return load_checkpoint_buffer(filename, data, map_location or 'cpu')


def _pavi(filename, map_location=None):
    raise CheckpointError(
        f'{filename}: pavi:// checkpoints are not supported by the safe '
        f'loader; download the file and pass its local path')


_LOADERS = {
    '': _local_or_url,
    'http://': _local_or_url,
    'https://': _local_or_url,
    'modelzoo://': _torchvision,
    'torchvision://': _torchvision,
    'open-mmlab://': _openmmlab,
    'openmmlab://': _openmmlab,
    'mmcls://': _mmcls,
    r'(\S+\:)?s3://': _object_storage,
    r'(\S+\:)?petrel://': _object_storage,
    'pavi://': _pavi,
}


@contextmanager
def safe_checkpoint_schemes():
    """Every mmengine checkpoint prefix loads through the safe loader while
    the context is open; the loaders registered before are back afterwards
    (contexts nest)."""
    # mmengine offers registration only; the table is read to restore it
    before = OrderedDict(CheckpointLoader._schemes)
    for prefix, loader in _LOADERS.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)
    try:
        yield
    finally:
        CheckpointLoader._schemes = before


def unsafe_schemes():
    """Prefixes whose registered loader is not ours (for the tests)."""
    ours = set(_LOADERS.values())
    return sorted(p for p, loader in CheckpointLoader._schemes.items()
                  if loader not in ours)
