"""What a training step keeps for backward, by part of the model, and what
training keeps besides (weights, gradients, optimizer moments)."""
from contextlib import contextmanager

import torch


class ModelPart:
    """Which part of the model runs now: 'backbone', 'side' (a side
    network's steps, checkpointed regions included) or 'heads' (neck,
    heads, losses: everything else)."""

    def __init__(self, model):
        self.now = 'heads'
        self.handles = [
            model.backbone.register_forward_pre_hook(
                lambda *a: self.enter('backbone')),
            model.backbone.register_forward_hook(
                lambda *a: self.enter('heads'))
        ]
        csn = getattr(model.backbone, 'csn', None)
        self.csn, self.csn_methods = csn, {}
        for name in ('read', 'fuse', 'bridge', 'state_from_trunk'):
            if csn is not None:
                self.csn_methods[name] = getattr(csn, name)
                setattr(csn, name, self.in_side(getattr(csn, name)))

    def enter(self, part):
        self.now = part

    def in_side(self, method):

        def run(*args, **kwargs):
            before, self.now = self.now, 'side'
            try:
                return method(*args, **kwargs)
            finally:
                self.now = before

        return run

    def remove(self):
        for h in self.handles:
            h.remove()
        for name in self.csn_methods:
            delattr(self.csn, name)  # the class's method again


def _storages(x):
    if isinstance(x, torch.Tensor):
        yield x.untyped_storage()
    elif isinstance(x, (tuple, list)):
        for t in x:
            yield from _storages(t)


class KeptBytes:
    """Inside the block, counts what a forward keeps for backward: storages
    autograd saves (checkpointed regions' inputs included) and outputs that
    selective checkpointing caches, each storage once, by ``where()``.

    ``exclude``: storages not to count (parameters: saved by reference,
    resident anyway).
    """

    def __init__(self, exclude=(), where=lambda: 'all'):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.where = where
        self.seen = {}  # data_ptr -> (bytes, part)

    def keep(self, storage):
        ptr = storage.data_ptr()
        if ptr not in self.exclude and ptr not in self.seen:
            self.seen[ptr] = (storage.nbytes(), self.where())

    def pack(self, t):
        self.keep(t.untyped_storage())
        return t

    def __enter__(self):
        from ..models import recompute
        self.recompute, self.policy = recompute, recompute.selective_policy
        policy = self.policy
        try:
            from torch.utils.checkpoint import CheckpointPolicy
        except ImportError:  # torch < 2.4: no selective checkpointing
            CheckpointPolicy = None

        def counting_policy(ctx, op, *args, **kwargs):
            decision = policy(ctx, op, *args, **kwargs)
            if decision == CheckpointPolicy.MUST_SAVE and \
                    not ctx.is_recompute:
                for storage in _storages(ctx.op_output):
                    self.keep(storage)
            return decision

        if CheckpointPolicy is not None:
            recompute.selective_policy = counting_policy
        self.hooks = torch.autograd.graph.saved_tensors_hooks(
            self.pack, lambda t: t)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self.hooks.__exit__(*exc)
        self.recompute.selective_policy = self.policy

    def total(self, part=None):
        return sum(n for n, p in self.seen.values()
                   if part is None or p == part)


@contextmanager
def kept_by_part(model):
    """A :class:`KeptBytes` of what runs inside, each storage attributed to
    the part of ``model`` that saved it (:class:`ModelPart`)."""
    where = ModelPart(model)
    try:
        with KeptBytes(model.parameters(), lambda: where.now) as kept:
            yield kept
    finally:
        where.remove()


def saved_for_backward(step):
    """Bytes one training step keeps for backward (:class:`KeptBytes`),
    split into backbone / side network / neck+heads."""
    with kept_by_part(step.model) as kept:
        loss = step.loss()
    if loss.requires_grad:
        loss.backward()
    step.model.zero_grad(set_to_none=True)
    return dict(
        saved_backbone=kept.total('backbone'),
        saved_side=kept.total('side'),
        saved_heads=kept.total('heads'),
        saved_total=kept.total())


def parameter_bytes(model):
    """(bytes of the weights and buffers, bytes of the trainable weights)."""
    weights = sum(t.numel() * t.element_size()
                  for t in [*model.parameters(), *model.buffers()])
    trainable = sum(p.numel() * p.element_size() for p in model.parameters()
                    if p.requires_grad)
    return weights, trainable


def model_state_bytes(model):
    """Weights and buffers, plus a gradient and AdamW's two moments for
    every trainable weight: what training keeps besides activations."""
    weights, trainable = parameter_bytes(model)
    return weights + 3 * trainable
