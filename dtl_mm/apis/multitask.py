"""Several detectors / segmentors fine-tuned from one frozen Swin or plain
ViT, run on one input with the shared part of the backbone computed once.

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
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from torch import nn

from ..models import (DTLSwinTransformer, DTLVisionTransformer,
                      PretrainedSwinTransformer, PretrainedTrunk,
                      PretrainedVisionTransformer, trunk_fingerprint)
from ..models.dtl_vit import run_frozen_vit, run_vit_from_trunk
from ..models.frozen_trunk import TrunkState, run_from_trunk, run_frozen_trunk
from ..models.mmpretrain_vit import (PretrainedMMPretrainViT,
                                     mmpretrain_vit_architecture,
                                     use_mmpretrain_vit_of)
# the output norms (norm0..3) exist only for a model's out_indices and act
# on stage outputs, which every task normalises itself
from ..models.weight_loading import OUTPUT_NORM

# a ViT's final norm acts on its last block's output, after any add-back
VIT_FINAL_NORM = re.compile(r'^ln1\.')
DTL_BACKBONES = (DTLSwinTransformer, DTLVisionTransformer)


class TrunkSharingError(ValueError):
    """Two tasks cannot share a frozen trunk."""


def shared_trunk_fingerprint(backbone: PretrainedTrunk) -> str:
    """sha256 of the frozen weights the tasks would share (the whole trunk
    but the output norms, which each task applies itself)."""
    own = trunk_kind(backbone).own
    return trunk_fingerprint({
        k: v
        for k, v in backbone.trunk.state_dict().items() if not own.match(k)
    })


def swin_architecture(backbone: PretrainedSwinTransformer) -> Dict:
    """What makes two Swins compute the same function from the same weights
    (weight shapes are compared by the fingerprint)."""
    swin = backbone.swin
    proj = swin.patch_embed.projection
    attns = [blk.attn for st in swin.stages for blk in st.blocks]
    return dict(
        depths=tuple(backbone.depths),
        channels=tuple(backbone.channels),
        patch=(tuple(proj.kernel_size), tuple(proj.stride)),
        num_heads=tuple(a.w_msa.num_heads for a in attns),
        window_size=tuple(a.window_size for a in attns),
        shift_size=tuple(a.shift_size for a in attns),
        qk_scale=tuple(a.w_msa.scale for a in attns),
        abs_pos_embed=bool(swin.use_abs_pos_embed),
        patch_norm=swin.patch_embed.norm is not None)


def vit_architecture(backbone: PretrainedVisionTransformer) -> Dict:
    """The same for a plain ViT."""
    vit = backbone.vit
    proj = vit.patch_embed.projection
    return dict(
        depths=tuple(backbone.depths),
        channels=tuple(backbone.channels),
        patch=(tuple(proj.kernel_size), tuple(proj.stride)),
        num_heads=tuple(layer.attn.num_heads for layer in vit.layers),
        extra_tokens=backbone.num_extra_tokens,
        pos_embed_grid=tuple(s // vit.patch_size for s in vit.img_size),
        interpolate_mode=vit.interpolate_mode,
        pre_norm=bool(vit.pre_norm))


def use_swin_of(backbone: PretrainedSwinTransformer,
                trunk: PretrainedSwinTransformer):
    """Point ``backbone`` at ``trunk``'s frozen patch embedding and stages
    (its own copies are dropped); its output norms stay its own."""
    swin, shared = backbone.swin, trunk.swin
    swin.patch_embed = shared.patch_embed
    swin.stages = shared.stages
    if swin.use_abs_pos_embed:
        swin.absolute_pos_embed = shared.absolute_pos_embed


def use_vit_of(backbone: PretrainedVisionTransformer,
               trunk: PretrainedVisionTransformer):
    """Point ``backbone`` at ``trunk``'s frozen embeddings and blocks; its
    final norm stays its own."""
    vit, shared = backbone.vit, trunk.vit
    names = ('patch_embed', 'cls_token', 'pos_embed', 'layers')
    for name in names + (('pre_ln', ) if vit.pre_norm else ()):
        setattr(vit, name, getattr(shared, name))


@dataclass(frozen=True)
class TrunkKind:
    """How the tasks of one kind of trunk share it."""
    name: str
    run_frozen: Callable  # (backbone, x, upto, keep) -> TrunkState
    run_from: Callable  # (backbone, state) -> outputs, no side network
    architecture: Callable  # backbone -> dict
    use_trunk_of: Callable  # (backbone, trunk): share trunk's modules
    own: re.Pattern  # trunk keys each task keeps its own


TRUNK_KINDS = {
    PretrainedSwinTransformer:
    TrunkKind('Swin', run_frozen_trunk, run_from_trunk, swin_architecture,
              use_swin_of, OUTPUT_NORM),
    PretrainedVisionTransformer:
    TrunkKind('ViT', run_frozen_vit, run_vit_from_trunk, vit_architecture,
              use_vit_of, VIT_FINAL_NORM),
    PretrainedMMPretrainViT:
    TrunkKind('mmpretrain ViT', run_frozen_vit, run_vit_from_trunk,
              mmpretrain_vit_architecture, use_mmpretrain_vit_of,
              VIT_FINAL_NORM),
}


def trunk_kind(backbone) -> TrunkKind:
    # the most specific kind (an mmpretrain ViT is also an mmseg-ViT
    # wrapper)
    for cls in type(backbone).__mro__:
        if cls in TRUNK_KINDS:
            return TRUNK_KINDS[cls]
    raise TypeError(f'{type(backbone).__name__} is not a dtl_mm backbone')


def why_not_shared(model) -> Optional[str]:
    """None when the model's backbone can read a shared frozen trunk, else
    the reason it has to run alone."""
    backbone = model.backbone
    name = type(backbone).__name__
    if isinstance(backbone, DTL_BACKBONES):
        pass
    elif type(backbone) in TRUNK_KINDS:
        if not backbone.frozen:
            return (f'full fine-tuning: every {backbone.TRUNK_NAME} weight '
                    f'is its own, so no block computes what another task '
                    f'computes')
    elif isinstance(backbone, PretrainedTrunk):
        return (f'{name}: its trainable parts sit inside every '
                f'{backbone.TRUNK_NAME} block, so no block computes what '
                f'another task computes')
    else:
        return f'{name} is not a frozen DTL or fixed Swin / ViT backbone'
    mode = (getattr(model, 'test_cfg', None) or {}).get('mode')
    if mode == 'slide':
        return ("test_cfg.mode='slide' runs the backbone on crops of the "
                "image, not on the shared input")
    return None


def first_add_back(backbone) -> Optional[int]:
    """M, the first block whose output gets a side signal (None: none)."""
    if isinstance(backbone, DTL_BACKBONES):
        return backbone.layout.first_g
    return None


def trunk_reads(backbone, upto: int) -> set:
    """The blocks whose inputs a shared trunk ending at block ``upto`` must
    keep for ``backbone``: its side network's reads (and, for a ViT, its
    outputs inside the trunk)."""
    if isinstance(backbone, PretrainedVisionTransformer):
        return backbone.needs_from_trunk(upto)
    if isinstance(backbone, DTLSwinTransformer):
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
        if isinstance(self.backbone, DTL_BACKBONES):
            return self.backbone.forward_rest(state)
        # fixed: no side network
        return trunk_kind(self.backbone).run_from(self.backbone, state)


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
        trunk_kind(backbone).use_trunk_of(backbone, trunk)
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
        return trunk_kind(self.trunk).run_frozen(self.trunk, inputs,
                                                 self.shared_blocks, self.keep)

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
    """Refuses, naming the two tasks, when trunk kinds, architectures or
    frozen weights differ. ``backbones``: [(task name, backbone)]."""
    (name0, ref), rest = backbones[0], backbones[1:]
    kind = trunk_kind(ref)
    for name, backbone in rest:
        if trunk_kind(backbone) is not kind:
            raise TrunkSharingError(
                f'tasks {name0!r} and {name!r} have different trunks '
                f'({kind.name} vs {trunk_kind(backbone).name}): they cannot '
                f'share a frozen trunk')
    arch0 = kind.architecture(ref)
    for name, backbone in rest:
        arch = kind.architecture(backbone)
        diff = [
            f'{k} {arch0[k]} vs {arch[k]}' for k in arch0
            if arch0[k] != arch[k]
        ]
        if diff:
            raise TrunkSharingError(
                f'tasks {name0!r} and {name!r} have different {kind.name} '
                f'architectures ({"; ".join(diff)}): they cannot share a '
                f'frozen trunk')
    print0 = shared_trunk_fingerprint(ref)
    for name, backbone in rest:
        other = shared_trunk_fingerprint(backbone)
        if other != print0:
            raise TrunkSharingError(
                f'tasks {name0!r} and {name!r} were fine-tuned from '
                f'different frozen {kind.name} weights (trunk sha256 '
                f'{print0[:12]}... vs {other[:12]}...): their trunk features '
                f'differ, so they cannot share one. Check that both '
                f'checkpoints come from the same pretrained {kind.name}.')
