"""Checkpoints in and out, one module per concern:

- ``safe_load``: reading files and URLs without running code from them,
  downloads with a per-URL cache;
- ``schemes``: mmengine's ``CheckpointLoader`` schemes routed to it;
- ``fit_check``: a whole-model checkpoint must fit the model;
- ``trained_config``: the backbone a checkpoint was trained with;
- ``atomic_io``: writes that never leave a truncated file under its name;
- ``convert``: lean <-> self-contained checkpoints;
- ``resume``: which checkpoint of a work dir to resume from.
"""
