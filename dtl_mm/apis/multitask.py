"""Several detectors / segmentors fine-tuned from one frozen trunk (Swin,
plain ViT, any family with an adapter), run on one input with the shared
part of the backbone computed once.

Up to its first add-back block M, a DTL backbone computes exactly what the
frozen trunk computes, so K tasks fine-tuned from the same trunk share the
patch embedding and blocks 1..min(M) over the tasks. From there each task
runs its own side network, the remaining frozen blocks, its neck and its
head. The K models keep one copy of the frozen trunk between them: every
sharing task's backbone points at the same patch embedding and blocks.

Sharing is exact only when the frozen weights and the architecture are
the same and the sharing tasks see the same input tensor; the first two are
checked here (tasks that differ are refused, by name); for the third,
:meth:`MultiTaskModel.predict` takes one tensor per task and shares the
trunk only between tasks given the same tensor object.
"""
import copy
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from torch import nn

from ..models import PretrainedTrunk, trunk_fingerprint
from ..models.dtl_backbone import DTLBackbone
from ..models.frozen_trunk import TrunkState, run_from_trunk, run_frozen_trunk


class TrunkSharingError(ValueError):
    """Two tasks cannot share a frozen trunk."""


def shared_trunk_fingerprint(backbone: PretrainedTrunk) -> str:
    """sha256 of the frozen weights the tasks would share (the whole trunk
    but the keys each task keeps its own, ``OWN_KEYS``: output norms)."""
    return trunk_fingerprint({
        k: v
        for k, v in backbone.trunk.state_dict().items()
        if not backbone.OWN_KEYS.match(k)
    })


def why_not_shared(model) -> Optional[str]:
    """None when the model's backbone can read a shared frozen trunk, else
    the reason it has to run alone."""
    backbone = model.backbone
    name = type(backbone).__name__
    if isinstance(backbone, DTLBackbone):
        pass
    elif 'FAMILY' in type(backbone).__dict__:  # a family's own wrapper
        if not backbone.frozen:
            return (f'full fine-tuning: every {backbone.TRUNK_NAME} weight '
                    f'is its own, so no block computes what another task '
                    f'computes')
    elif isinstance(backbone, PretrainedTrunk):
        return (f'{name}: its trainable parts sit inside every '
                f'{backbone.TRUNK_NAME} block, so no block computes what '
                f'another task computes')
    else:
        return f'{name} is not a frozen DTL or fixed dtl_mm backbone'
    mode = (getattr(model, 'test_cfg', None) or {}).get('mode')
    if mode == 'slide':
        return ("test_cfg.mode='slide' runs the backbone on crops of the "
                "image, not on the shared input")
    return None


def first_add_back(backbone) -> Optional[int]:
    """M, the first block whose output gets a side signal (None: none)."""
    if isinstance(backbone, DTLBackbone):
        return backbone.layout.first_g
    return None


def trunk_reads(backbone, upto: int) -> set:
    """The blocks whose inputs a shared trunk ending at block ``upto`` must
    keep for ``backbone``: its side network's reads."""
    if isinstance(backbone, DTLBackbone):
        return {w for w in backbone.layout.w_blocks if w <= upto}
    return set()


@dataclass
class Task:
    """One model of a :class:`MultiTaskModel` and how it runs."""
    name: str
    model: nn.Module
    reason_alone: Optional[str]  # None: reads the shared trunk

    @property
    def shares(self) -> bool:
        return self.reason_alone is None


class _TrunkRun:
    """The shared trunk's results for the batch being predicted: one per
    distinct input tensor."""

    def __init__(self):
        self.runs = []  # [(input tensor, TrunkState)]

    def state_for(self, x) -> Optional[TrunkState]:
        return next((state for inputs, state in self.runs if inputs is x),
                    None)


class TrunkBranch(nn.Module):
    """A task's backbone inside a :class:`MultiTaskModel`.

    Called on the batch the shared trunk has just run on, it continues from
    the trunk's state (side network, later blocks, stage outputs); on any
    other tensor it runs the whole backbone, as the model alone would.
    """

    def __init__(self, backbone: PretrainedTrunk, run: _TrunkRun):
        super().__init__()
        self.backbone = backbone
        self.run = run

    def forward(self, x):
        state = self.run.state_for(x)
        if state is None:
            return self.backbone(x)
        if isinstance(self.backbone, DTLBackbone):
            return self.backbone.forward_rest(state)
        # fixed: no side network
        return run_from_trunk(self.backbone, state)


def shallow_copy(module: nn.Module) -> nn.Module:
    """A new module object over the same parameters, buffers and
    submodules: assigning a submodule or parameter to the copy leaves
    ``module`` as it was (``copy.copy`` alone would share the dicts that
    hold them)."""
    new = copy.copy(module)
    for attr in ('_modules', '_parameters', '_buffers'):
        setattr(new, attr, copy.copy(getattr(module, attr)))
    return new


def branch_of(model: nn.Module, trunk: PretrainedTrunk, run) -> nn.Module:
    """``model`` reading the shared trunk: a shallow copy whose backbone is
    a :class:`TrunkBranch` over a copy of the backbone pointed at
    ``trunk``'s frozen modules. The caller's model keeps its own backbone
    and trunk modules; the weights are the same tensors, not copies."""
    model = shallow_copy(model)
    backbone = shallow_copy(model.backbone)
    if backbone.trunk is not trunk.trunk:
        setattr(backbone, backbone.TRUNK, shallow_copy(backbone.trunk))
        backbone.share_trunk_of(trunk)
    model.backbone = TrunkBranch(backbone, run)
    return model


class MultiTaskModel(nn.Module):
    """K mmdet / mmseg models on one frozen Swin or ViT trunk.

    Args:
        models (dict): task name -> built detector / segmentor, weights
            loaded. Models whose backbone cannot read a shared trunk (full
            fine-tuning, LoRA, Adapter, AdaptFormer, sliding-window
            segmentation) are kept and run alone, with a log line saying so.
            The models are not changed: the sharing ones are used through
            shallow copies (:func:`branch_of`) over the same weights.

    Attributes:
        shared_blocks (int): the trunk covers the patch embedding and blocks
            1..shared_blocks: the earliest first add-back block M over the
            sharing tasks (the last block when only ``fixed`` backbones
            share). 0 when fewer than one task shares.
        trunk: the backbone whose frozen trunk every sharing task uses.
    """

    def __init__(self, models: Dict[str, nn.Module]):
        super().__init__()
        if not models:
            raise ValueError('MultiTaskModel needs at least one model')
        self.tasks = [
            Task(name, model, why_not_shared(model))
            for name, model in models.items()
        ]
        self.run = _TrunkRun()
        sharing = [t for t in self.tasks if t.shares]
        for t in self.tasks:
            if not t.shares:
                print_log(
                    f'task {t.name!r} runs alone: {t.reason_alone}',
                    logger='current')
        self.trunk = None
        self.shared_blocks = 0
        self.keep = ()
        self.keep_outputs = ()
        if sharing:
            self.trunk = sharing[0].model.backbone
            check_same_trunk([(t.name, t.model.backbone) for t in sharing])
            for t in sharing:
                t.model = branch_of(t.model, self.trunk, self.run)
        self.models = nn.ModuleDict({t.name: t.model for t in self.tasks})
        if not sharing:
            return
        ms = [first_add_back(t.model.backbone.backbone) for t in sharing]
        total = sum(self.trunk.depths)
        self.shared_blocks = min((m for m in ms if m), default=total)
        self.keep = tuple(
            sorted(set().union(
                *(trunk_reads(t.model.backbone.backbone, self.shared_blocks)
                  for t in sharing))))
        # each task's outputs inside the shared trunk
        self.keep_outputs = tuple(
            sorted(set().union(*(t.model.backbone.backbone.out_blocks
                                 for t in sharing))))
        print_log(
            f'{len(sharing)} task(s) share the frozen '
            f'{self.trunk.TRUNK_NAME} trunk (patch '
            f'embedding + blocks 1..{self.shared_blocks} of {total}): ' +
            ', '.join(repr(t.name) for t in sharing),
            logger='current')

    @property
    def names(self) -> List[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> Task:
        return next(t for t in self.tasks if t.name == name)

    def describe(self) -> str:
        """One line per task: shares the trunk, or runs alone and why."""
        lines = []
        for t in self.tasks:
            if t.shares:
                m = first_add_back(t.model.backbone.backbone)
                lines.append(
                    f'{t.name}: shares blocks 1..{self.shared_blocks}' +
                    (f', first add-back block {m}'
                     if m else ' (fixed backbone)'))
            else:
                lines.append(f'{t.name}: runs alone ({t.reason_alone})')
        return '\n'.join(lines)

    def shared_trunk(self, inputs: torch.Tensor) -> Optional[TrunkState]:
        """Runs the shared trunk on a batch (None when no task shares)."""
        if self.trunk is None:
            return None
        return run_frozen_trunk(self.trunk, inputs, self.shared_blocks,
                                self.keep, self.keep_outputs)

    @torch.no_grad()
    def predict(self, inputs: Union[torch.Tensor, Dict[str, torch.Tensor]],
                data_samples: Dict[str, Sequence]) -> Dict[str, list]:
        """Every task's predictions on one preprocessed batch.

        Args:
            inputs: the batch tensor (B, 3, H, W) of every task, or task
                name -> its own batch tensor. The trunk runs once per
                distinct tensor object among the sharing tasks: tasks
                given the same object share it; pass one object only for
                inputs that are identical, so that every task computes what
                its model alone computes on its input.
            data_samples: task name -> that task's data samples (its own
                DetDataSample / SegDataSample type) with the batch's meta
                information, so that predictions map back to each original
                image. Tasks may be given the same sample objects (tasks
                that preprocess alike): each task then predicts into a copy
                of its own.
        """
        if not isinstance(inputs, dict):
            inputs = {t.name: inputs for t in self.tasks}
        data_samples = own_samples(self.names, data_samples)
        distinct = []
        for t in self.tasks:
            x = inputs[t.name]
            if t.shares and not any(x is y for y in distinct):
                distinct.append(x)
        self.run.runs = [(x, self.shared_trunk(x)) for x in distinct]
        try:
            return {
                t.name:
                t.model(inputs[t.name], data_samples[t.name], mode='predict')
                for t in self.tasks
            }
        finally:  # the trunk's features are not kept past the batch
            self.run.runs = []


def own_samples(names: Sequence[str],
                data_samples: Dict[str, Sequence]) -> Dict[str, list]:
    """task -> its data samples, no object held by two tasks: mmdet and
    mmseg write the predictions into the samples they are given
    (``add_pred_to_datasample``), so tasks sharing samples would all
    return the last task's predictions. A task whose samples an earlier
    task holds gets a deep copy, made before any task runs so that no
    copy carries another task's predictions."""
    seen, out = set(), {}
    for name in names:
        samples = list(data_samples[name])
        if any(id(s) in seen for s in samples):
            samples = copy.deepcopy(samples)
        seen.update(id(s) for s in samples)
        out[name] = samples
    return out


def check_same_trunk(backbones):
    """Refuses, naming the two tasks, when trunk families, architectures or
    frozen weights differ. ``backbones``: [(task name, backbone)]."""
    (name0, ref), rest = backbones[0], backbones[1:]
    kind = ref.FAMILY
    for name, backbone in rest:
        if backbone.FAMILY != kind:
            raise TrunkSharingError(
                f'tasks {name0!r} and {name!r} have different trunks '
                f'({kind} vs {backbone.FAMILY}): they cannot share a frozen '
                f'trunk')
    arch0 = ref.architecture()
    for name, backbone in rest:
        arch = backbone.architecture()
        diff = [
            f'{k} {arch0[k]} vs {arch[k]}' for k in arch0
            if arch0[k] != arch[k]
        ]
        if diff:
            raise TrunkSharingError(
                f'tasks {name0!r} and {name!r} have different {kind} '
                f'architectures ({"; ".join(diff)}): they cannot share a '
                f'frozen trunk')
    print0 = shared_trunk_fingerprint(ref)
    for name, backbone in rest:
        other = shared_trunk_fingerprint(backbone)
        if other != print0:
            raise TrunkSharingError(
                f'tasks {name0!r} and {name!r} were fine-tuned from '
                f'different frozen {kind} weights (trunk sha256 '
                f'{print0[:12]}... vs {other[:12]}...): their trunk features '
                f'differ, so they cannot share one. Check that both '
                f'checkpoints come from the same pretrained {kind}.')
