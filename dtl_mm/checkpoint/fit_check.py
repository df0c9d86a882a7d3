"""Whole-model checkpoints must fit the model they are loaded into.

mmengine loads ``load_from``, ``--resume`` and test checkpoints with
``strict=False``: a checkpoint of another architecture (other shapes) or of
another task (a segmentor's ``decode_head.*`` for a detector's
``roi_head.*``) only prints warnings, and the run goes on with random
weights where they did not fit. ``DTLRunner`` (every dtl_mm config's
``runner_type``, so mmdet's and mmseg's own tools get it too) checks each
checkpoint it loads against the model and stops the run when it does not
fit.

Deliberately absent keys are not errors: the frozen Swin of a lean
checkpoint (the backbone restores and checks it itself) and the backbone's
trunk record in checkpoints saved before it existed.
"""
import inspect
import re
from typing import Dict, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..models.trunk_wrapper import PretrainedTrunk
from ..utils.model_unwrap import bare_model
from .lean_checkpoint import EXTRA_STATE
from .safe_load import CheckpointError, checkpoint_source
from .trunk_weights import describe_state_dict


def expected_state(
        model: torch.nn.Module) -> Dict[str, Optional[Tuple[int, ...]]]:
    """Every key the model's full state dict has, with its shape (without
    calling ``state_dict``, whose lean hooks would drop the frozen trunk)."""
    shapes = {}
    for name, module in model.named_modules():
        prefix = name + '.' if name else ''
        for key, p in module.named_parameters(recurse=False):
            shapes[prefix + key] = tuple(p.shape)
        for key, b in module.named_buffers(recurse=False):
            if key not in module._non_persistent_buffers_set:
                shapes[prefix + key] = tuple(b.shape)
        if type(module).get_extra_state is not \
                torch.nn.Module.get_extra_state:
            shapes[prefix + EXTRA_STATE] = None  # its length varies
    return shapes


def revise_keys_as_mmengine(state: dict) -> dict:
    """The keys as mmengine will load them: ``Runner.load_checkpoint``'s
    default ``revise_keys`` (a DDP ``module.`` prefix dropped), applied as
    ``_load_checkpoint_to_model`` applies them. The hook runs before that
    and is not told a caller's own revisions; the default is taken from
    mmengine's signature so that the two cannot drift apart."""
    revise = inspect.signature(
        Runner.load_checkpoint).parameters['revise_keys'].default
    for pattern, replacement in revise:
        state = {re.sub(pattern, replacement, k): v for k, v in state.items()}
    return state


def _deliberately_absent(model):
    """Keys a valid checkpoint may lack."""
    keys = set()
    for name, module in model.named_modules():
        if isinstance(module, PretrainedTrunk):
            prefix = name + '.' if name else ''
            keys.add(prefix + EXTRA_STATE)
            # the backbone decides about its own trunk (lean or refused)
            keys.update(prefix + module.trunk_prefix + k
                        for k in module.trunk_keys)
    return keys


def check_checkpoint_fits(model, checkpoint, name=None):
    """Raises CheckpointError naming the file when ``checkpoint`` does not
    fit ``model``; logs keys the model does not have."""
    name = name or checkpoint_source(checkpoint)
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f'{name}: not a model checkpoint (no '
                              f'state dict)')
    state = revise_keys_as_mmengine(state)
    model = bare_model(model)
    expected = expected_state(model)
    optional = _deliberately_absent(model)

    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {expected[k]}'
        for k, v in state.items() if expected.get(k) is not None
        and isinstance(v, torch.Tensor) and tuple(v.shape) != expected[k]
    ]
    missing = [k for k in expected if k not in state and k not in optional]
    unexpected = [k for k in state if k not in expected]
    if mismatched or missing:
        problems = []
        if mismatched:
            problems.append(f'{len(mismatched)} tensor(s) have other shapes '
                            f'(another architecture?), e.g. ' +
                            '; '.join(mismatched[:3]))
        if missing:
            problems.append(f'{len(missing)} weight(s) of the model are '
                            f'missing, e.g. {missing[:3]}')
        raise CheckpointError(
            f'{name} does not fit this model: ' + '; '.join(problems) +
            f'. The checkpoint holds {describe_state_dict(state)}; the model '
            f'expects {describe_state_dict(expected)}. Loading it would '
            f'leave weights at random values.')
    if unexpected:
        print_log(
            f'{name}: {len(unexpected)} key(s) the model does not '
            f'have are ignored, e.g. {unexpected[:3]}',
            logger='current',
            level=30)
