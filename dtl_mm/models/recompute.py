"""Activation checkpointing of the trainable path: recompute instead of keep.

Everything here uses the non-reentrant ``torch.utils.checkpoint`` API. The
reentrant one (mmengine's ``activation_checkpointing`` config key, mmdet's
Swin ``with_cp``) only produces gradients for a region whose tensor inputs
require grad; behind a frozen trunk that is rarely so, and a wrapped module
then silently trains nothing. The non-reentrant API has no such condition,
works under DDP with ``find_unused_parameters=False``, recomputes under the
autocast state of the forward and restores the RNG state, so stochastic
depth drops the same paths on recomputation.

Two policies:

- ``True`` (recompute): a region keeps only its inputs; backward runs its
  forward again.
- ``'selective'``: torch's selective activation checkpointing in the
  trunk's blocks. A region keeps its inputs and the outputs of the matrix
  products that widen their input (qkv, fc1) and of convolutions; the cheap
  element-wise work (LayerNorm, softmax, GELU, scaling, adds) and the
  narrowing products, whose outputs backward only needs through the next
  LayerNorm, are recomputed. A side network is recomputed whole under
  either policy (``CompactSideNetwork``).
  ``tools/benchmarks/recompute_policies.py`` measures what each policy
  keeps per region.
"""
from contextlib import contextmanager
from functools import partial
from operator import attrgetter
from typing import Callable, Iterable, Union

import torch
from mmengine.utils import digit_version
from torch.utils._pytree import tree_flatten, tree_unflatten
from torch.utils.checkpoint import checkpoint

CP_POLICIES = (False, True, 'selective')
# torch's selective activation checkpointing (CheckpointPolicy,
# create_selective_checkpoint_contexts) first shipped in torch 2.4; the
# package imports on older torch, and only 'selective' asks for it
SELECTIVE_MIN_TORCH = '2.4'
_aten = torch.ops.aten
# products: output = input x weight (the last dimension is the width)
_LINEAR = {_aten.mm.default: 1, _aten.addmm.default: 2}
_KEEP_ALWAYS = {_aten.convolution.default}


def keep_widening_products(ctx, op, *args, **kwargs):
    """Selective policy: keep what is expensive to recompute and needed.

    A product whose output is wider than its input (qkv: C -> 3C, fc1:
    C -> 4C) feeds element-wise work backward needs (attention operands,
    GELU's input); recomputing it would cost the block's largest matmuls.
    A narrowing product (proj, fc2) only feeds a residual add and the next
    LayerNorm, so it is recomputed from the kept wide outputs.
    """
    from torch.utils.checkpoint import CheckpointPolicy
    if op in _KEEP_ALWAYS:
        return CheckpointPolicy.MUST_SAVE
    if op in _LINEAR:
        mat = args[_LINEAR[op]]  # (in, out) right-hand matrix
        if mat.shape[-1] > mat.shape[-2]:
            return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def check_cp_policy(value, owner: str = 'with_cp'):
    """``value`` if it is one of :data:`CP_POLICIES` and this torch has
    it, else a ValueError."""
    if isinstance(value, bool):
        return value
    if value == 'selective':
        if digit_version(
                torch.__version__) < digit_version(SELECTIVE_MIN_TORCH):
            raise ValueError(
                f'{owner}="selective" needs torch >= {SELECTIVE_MIN_TORCH} '
                f'(its selective activation checkpointing); this is torch '
                f'{torch.__version__}. Use {owner}=True (recompute every '
                f'region), which works on every supported torch.')
        return value
    raise ValueError(f'{owner} must be False, True or "selective", got '
                     f'{value!r}')


def recompute(policy: Union[bool, str], fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, as a checkpointed region under ``policy``.

    Runs ``fn`` directly when the policy is False or autograd is off (eval,
    inference): there is nothing to keep then. Modules pass False when they
    are not training.
    """
    if not (policy and torch.is_grad_enabled()):
        return fn(*args, **kwargs)
    # the region's inputs as positional arguments, tensors in tuples and
    # lists (FPN levels) included: checkpoint keeps those through autograd's
    # saved tensors (version checks, visible to saved-tensor hooks)
    flat, spec = tree_flatten((args, kwargs))

    def region(*flat):
        args, kwargs = tree_unflatten(list(flat), spec)
        return fn(*args, **kwargs)

    context = {}
    if policy == 'selective':
        from torch.utils.checkpoint import create_selective_checkpoint_contexts

        # the module global, looked up at each call: the benchmark wraps it
        # to count what the policy keeps
        context['context_fn'] = partial(create_selective_checkpoint_contexts,
                                        selective_policy)
    return checkpoint(region, *flat, use_reentrant=False, **context)


selective_policy = keep_widening_products

# -- the neck and heads of a detector / segmentor -----------------------------


@contextmanager
def running_stats_kept(module: torch.nn.Module):
    """Batch norms inside ``module`` keep their running statistics: a
    recomputation must not count the batch a second time."""
    norms = [
        m for m in module.modules()
        if getattr(m, 'running_mean', None) is not None
    ]
    saved = [{k: b.clone()
              for k, b in m.named_buffers(recurse=False)} for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved):
                for k, b in m.named_buffers(recurse=False):
                    b.copy_(buffers[k])


def recompute_module_call(module: torch.nn.Module, method: Callable, *args,
                          **kwargs):
    """``method(*args, **kwargs)`` (a method of ``module``) as a checkpointed
    region while ``module`` trains. Heads hold batch norms (Swin recipes:
    SyncBN in the bbox heads, UperNet), whose running statistics the
    recomputation leaves as the forward set them."""
    calls = []

    def run(*args, **kwargs):
        if not calls:  # the forward
            calls.append(1)
            return method(*args, **kwargs)
        with running_stats_kept(module):  # a recomputation
            return method(*args, **kwargs)

    return recompute(module.training, run, *args, **kwargs)


class CheckpointedMethod:
    """Replaces ``module.<name>`` by a checkpointed call of the class's
    method while the module trains.

    An object holding the module, not a closure: deep copies of the model
    (EMA, test-time augmentation) then call their own module.
    """

    def __init__(self, module: torch.nn.Module, name: str):
        self.module, self.name = module, name

    def __call__(self, *args, **kwargs):
        method = getattr(type(self.module), self.name).__get__(self.module)
        return recompute_module_call(self.module, method, *args, **kwargs)


def _checkpoint_method(module, name: str):
    if not isinstance(getattr(module, name), CheckpointedMethod):
        setattr(module, name, CheckpointedMethod(module, name))


# The config key naming the parts to checkpoint (dotted attribute names of
# the model). Not mmengine's ``activation_checkpointing``, whose reentrant
# wrapper gives a part behind a frozen trunk no gradients; DTLRunner refuses
# that key and applies this one.
CONFIG_KEY = 'checkpointed_parts'
# an RoI head is checkpointed by its type, not by the key
ROI_HEAD_TYPES = {
    'CascadeRoIHead': 'CheckpointedCascadeRoIHead',
    'StandardRoIHead': 'CheckpointedStandardRoIHead',
}


def request_checkpointing(cfg, parts: Iterable[str]):
    """Makes a config (before its model is built) checkpoint exactly
    ``parts``: an RoI head by its type (the checkpointed one when listed,
    the library's own when not), every other part in :data:`CONFIG_KEY`."""
    parts = list(parts)
    head = cfg.model.get('roi_head')
    if isinstance(head, dict):
        plain = {v: k for k, v in ROI_HEAD_TYPES.items()}
        if 'roi_head' in parts:
            parts.remove('roi_head')
            head.type = ROI_HEAD_TYPES.get(head.type, head.type)
            if head.type not in plain:
                raise ValueError(f'model.roi_head.type={head.type!r}: no '
                                 f'checkpointed variant (there is one of '
                                 f'{sorted(ROI_HEAD_TYPES)})')
        else:
            head.type = plain.get(head.type, head.type)
    cfg[CONFIG_KEY] = parts


def checkpointing_requested(cfg) -> list:
    """The parts a config checkpoints: its :data:`CONFIG_KEY`, and
    ``'roi_head'`` when that has a checkpointed type."""
    parts = list(cfg.get(CONFIG_KEY) or [])
    head = cfg.model.get('roi_head')
    if isinstance(head, dict) and head.get('type') in ROI_HEAD_TYPES.values():
        parts.append('roi_head')
    return parts


def enable_activation_checkpointing(model: torch.nn.Module,
                                    modules: Iterable[str]) -> list:
    """Checkpoints the named parts of ``model`` (dotted attribute names, as
    in the :data:`CONFIG_KEY` config key) in training; returns what was
    wrapped, for the log.

    - a backbone with a ``with_cp`` policy (ours): recompute policy on,
      unless it is already set (e.g. ``'selective'``);
    - an RoI head: only one of the checkpointed RoI head types
      (``models/roi_heads``), which checkpoint each stage's RoI extractor
      and head together;
    - a segmentation decode head (mmseg): its whole ``loss``, so the
      full-resolution logits the loss builds are not kept;
    - anything else: its ``forward``.
    """
    if isinstance(modules, str):
        modules = [modules]
    done = []
    for name in modules:
        try:
            module = attrgetter(name)(model)
        except AttributeError:
            raise ValueError(
                f'{CONFIG_KEY}: the model has no part '
                f'{name!r}; its parts are '
                f'{[n for n, _ in model.named_children()]}') from None
        parent_name, _, _ = name.rpartition('.')
        parent = attrgetter(parent_name)(model) if parent_name else None
        if getattr(parent, 'trunk', None) is module:
            # a dtl_mm backbone runs its trunk's blocks itself: the trunk's
            # own forward is never called, so wrapping it would checkpoint
            # nothing while the log said it did
            raise ValueError(
                f'{CONFIG_KEY}: {name!r} is the trunk inside '
                f'{parent_name!r}, whose blocks the backbone runs itself '
                f'(the trunk\'s forward is never called); list '
                f'{parent_name!r} instead (its with_cp policy)')
        if hasattr(module, 'set_checkpointing'):
            done.append(f'{name} ({module.set_checkpointing()})')
        elif hasattr(module, '_bbox_forward'):
            if not getattr(module, 'checkpointed', False):
                checkpointed = ROI_HEAD_TYPES.get(type(module).__name__)
                raise ValueError(
                    f'{CONFIG_KEY}: {name!r} is a {type(module).__name__}; '
                    f'an RoI head is checkpointed by its type: set '
                    f'model.{name}.type=' +
                    (f'{checkpointed!r}' if checkpointed else
                     f'one of {sorted(ROI_HEAD_TYPES.values())}') +
                    f' and leave it out of {CONFIG_KEY}')
            done.append(f'{name} (its type)')
        elif hasattr(module, 'loss_by_feat') and hasattr(module, 'cls_seg'):
            _checkpoint_method(module, 'loss')
            done.append(f'{name}.loss')
        else:
            _checkpoint_method(module, 'forward')
            done.append(f'{name}.forward')
    return done
