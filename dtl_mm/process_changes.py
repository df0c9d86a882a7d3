"""The changes dtl_mm makes to mmengine and torch for the whole process.

Importing ``dtl_mm`` registers modules and adds the ``dtl_mm::`` config
scope (change 5 below, a new entry in mmengine's table). The others are
made by
importing this module by name, which every shipped config does in its
``custom_imports`` (``imports=['dtl_mm', 'dtl_mm.process_changes']``), and
by calling :func:`apply_process_changes`, which our tools and
:mod:`dtl_mm.apis` do before they read a config or a checkpoint. Each
change is idempotent and leaves other packages' behaviour alone except where
listed.

Why not on ``import dtl_mm``, and why at all. Changes 1-3 are safety
measures: mmengine's checkpoint loaders unpickle whatever a file holds (its
URL loader on every torch, all of them on torch < 2.6), so loading a
checkpoint can run code from it, and mmengine writes checkpoints in place,
so a run killed mid-save leaves a truncated file for ``--resume`` to pick.
They must be in place before a runner loads ``load_from``, ``--resume`` or
an ``init_cfg`` checkpoint, in our tools and in mmdet's and mmseg's own
tools alike. ``custom_imports`` is the one mechanism those tools give a
config to run code before that, so the configs name this module there: the
effect is visible in every config instead of hidden behind registering a
backbone, and a user who imports ``dtl_mm`` in a program of their own keeps
mmengine's behaviour unless they ask for ours. The cost: a config of a
user's that replaces ``custom_imports`` instead of adding to it loses the
safe loading (our backbones' own pretrained loading stays safe either way;
it does not go through mmengine's loaders).

1. torch's weights-only allow-list (``torch.serialization.
   add_safe_globals``, torch >= 2.4) gains the few types an mmengine
   checkpoint holds (``HistoryBuffer``, numpy scalars and dtypes under their
   numpy 1 and numpy 2 names), so ``weights_only=True`` loads read real
   checkpoints. Why: loading a checkpoint must never run code from it.
2. Every mmengine ``CheckpointLoader`` scheme (local paths, ``http(s)://``,
   ``open-mmlab://``, ``torchvision://``, ``mmcls://``, ``s3://``) is
   replaced (``force=True``) by the safe loader of
   :mod:`dtl_mm.checkpoint.schemes`; ``pavi://`` is refused. Why: mmengine's
   own loaders unpickle anything on torch < 2.6, its URL loader on every
   torch, and ``load_from``, ``--resume`` and mmdet's and mmseg's own tools
   all go through them.
3. mmengine's ``local`` file backend becomes
   :class:`dtl_mm.checkpoint.atomic_io.AtomicLocalBackend`, and
   CheckpointHook's ``last_checkpoint`` write goes through the same atomic
   write. Why: a run killed mid-save must not leave
   a truncated checkpoint under its final name for ``--resume`` to pick.
4. On forks of the stack that publish ``mmseg`` under another distribution
   name (``onedl-mmsegmentation``), mmengine's ``MODULE2PACKAGE`` entry is
   pointed at that distribution (:mod:`dtl_mm.utils.config_packages`); nothing
   changes where upstream mmsegmentation is installed. Why: ``mmseg::``
   base configs fail to resolve there otherwise.
5. mmengine's ``MODULE2PACKAGE`` table gains ``dtl_mm`` (nothing else in
   it changes; ``import dtl_mm`` already makes this one), naming the
   module ``dtl_mm.version`` (any module in the package folder) so that
   mmengine reads the configs beside the ``dtl_mm`` actually imported. Why:
   a user's config can then inherit ours with
   ``_base_ = 'dtl_mm::coco/...'`` from the installed package.

Registration of our backbones, hooks and optimizer constructor is not listed:
each class registers itself where it is defined, in mmengine's root
registries.
"""
from .checkpoint.atomic_io import make_local_writes_atomic
from .checkpoint.safe_load import allow_mmengine_types_in_torch_load
from .checkpoint.schemes import register_safe_loaders
from .utils.config_packages import (register_own_configs,
                                    resolve_forked_config_packages)


def apply_process_changes():
    """Applies the five changes above (idempotent)."""
    allow_mmengine_types_in_torch_load()
    register_safe_loaders()
    make_local_writes_atomic()
    resolve_forked_config_packages()
    register_own_configs()


# importing this module by name, as the configs' custom_imports do, is the
# request for these changes
apply_process_changes()
