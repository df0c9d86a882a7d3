"""Everything importing dtl_mm changes for the whole Python process.

:func:`apply_process_changes` is called once, on purpose, from
``dtl_mm/__init__.py``: configs load the plugin through ``custom_imports``,
and these changes must be in place before mmengine reads a checkpoint or
writes one. Each is idempotent and leaves other packages' behaviour alone
except where listed.

1. torch's weights-only allow-list (``torch.serialization.
   add_safe_globals``, torch >= 2.4) gains the few types an mmengine
   checkpoint holds (``HistoryBuffer``, numpy scalars and dtypes under their
   numpy 1 and numpy 2 names), so ``weights_only=True`` loads read real
   checkpoints. Why: loading a checkpoint must never run code from it.
2. Every mmengine ``CheckpointLoader`` scheme (local paths, ``http(s)://``,
   ``open-mmlab://``, ``torchvision://``, ``mmcls://``, ``s3://``) is
   replaced (``force=True``) by the safe loader of
   :mod:`dtl_mm.checkpoint_schemes`; ``pavi://`` is refused. Why: mmengine's
   own loaders unpickle anything on torch < 2.6, its URL loader on every
   torch, and ``load_from``, ``--resume`` and mmdet's and mmseg's own tools
   all go through them.
3. mmengine's ``local`` file backend becomes :class:`dtl_mm.atomic_io.
   AtomicLocalBackend`, and CheckpointHook's ``last_checkpoint`` write goes
   through the same atomic write. Why: a run killed mid-save must not leave
   a truncated checkpoint under its final name for ``--resume`` to pick.
4. On forks of the stack that publish ``mmseg`` under another distribution
   name (``onedl-mmsegmentation``), mmengine's ``MODULE2PACKAGE`` entry is
   pointed at that distribution (:mod:`dtl_mm.config_packages`); nothing
   changes where upstream mmsegmentation is installed. Why: ``mmseg::``
   base configs fail to resolve there otherwise.
5. mmengine's ``MODULE2PACKAGE`` table gains ``dtl_mm`` (nothing else in
   it changes), naming the module ``dtl_mm.package_files`` so that
   mmengine reads the configs beside the ``dtl_mm`` actually imported. Why:
   a user's config can then inherit ours with
   ``_base_ = 'dtl_mm::coco/...'`` from the installed package.

Registration of our backbones, hooks and optimizer constructor is not listed:
each class registers itself where it is defined, in mmengine's root
registries.
"""
from .atomic_io import make_local_writes_atomic
from .checkpoint import allow_mmengine_types_in_torch_load
from .checkpoint_schemes import register_safe_loaders
from .config_packages import (register_own_configs,
                              resolve_forked_config_packages)


def apply_process_changes():
    """Applies the five changes above (idempotent)."""
    allow_mmengine_types_in_torch_load()
    register_safe_loaders()
    make_local_writes_atomic()
    resolve_forked_config_packages()
    register_own_configs()
