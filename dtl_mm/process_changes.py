"""What dtl_mm changes for the whole process, and why.

``import dtl_mm`` calls :func:`apply_process_changes`, which adds entries to
two tables; nothing else in mmengine, mmdet, mmseg or torch is changed for
the process.

mmengine's table of config packages (``mmengine.config.utils.
MODULE2PACKAGE``):

- ``dtl_mm`` is added, naming the module ``dtl_mm.version`` (any module in
  the package folder), so that mmengine reads our configs beside the
  ``dtl_mm`` actually imported: a user's config can inherit ours with
  ``_base_ = 'dtl_mm::coco/...'``. mmengine has no public way to add a
  config package, hence the table entry.
- On forks of the stack that publish ``mmseg`` under another distribution
  name (``onedl-mmsegmentation``), the ``mmseg`` entry is pointed at that
  distribution (:mod:`dtl_mm.utils.config_packages`); nothing changes where
  upstream mmsegmentation is installed. Without it, ``mmseg::`` base
  configs fail to resolve there.

torch's weights-only allow-list (``torch.serialization.add_safe_globals``,
torch's public registry for it; torch >= 2.4):

- the few types an mmengine training checkpoint holds besides tensors
  (``HistoryBuffer`` of numpy arrays in the message hub, ``Counter``
  milestones, numpy's pickling helpers under their numpy 1 and 2 names) are
  added (:mod:`dtl_mm.checkpoint.safe_load`). Loading stays code-free: these
  types hold data only. Without them torch >= 2.6, whose ``torch.load``
  reads weights only by default, refuses every mmengine training
  checkpoint, so mmdet's and mmseg's own inferencers (which load through
  mmengine's loader) could not read ours.

Everything else a dtl_mm run needs (safe checkpoint loading, the model and
data checks, non-reentrant activation checkpointing) is done by the
registered ``DTLRunner`` that the configs select with ``runner_type``, and
atomic checkpoint writes by the ``atomic_local`` file backend they select
in ``default_hooks.checkpoint.backend_args``.

This module was once a separate import that configs named in
``custom_imports``; a config that still names it keeps working.
"""
from .checkpoint.safe_load import allow_mmengine_types_in_torch_load
from .utils.config_packages import (register_own_configs,
                                    resolve_forked_config_packages)


def apply_process_changes():
    """Adds the table entries above (idempotent)."""
    resolve_forked_config_packages()
    register_own_configs()
    allow_mmengine_types_in_torch_load()
