"""The one walk of a frozen trunk with a side network, for every trunk
family: the trunk up to a block, then the rest of the backbone (side
network, later blocks, outputs) from there.

It asks the backbone only for the trunk interface of
:class:`~dtl_mm.models.trunk_wrapper.PretrainedTrunk` (``embed``,
``run_block``, ``downsample``, ``block_output``, ``depths``,
``out_blocks``, ``num_extra_tokens``), so Swin, plain ViTs and any trunk
with an adapter take the same path, in training, multi-task sharing and
lean checkpoints alike.

Up to the first block that receives a side signal, a DTL backbone computes
exactly what its frozen trunk computes, so that piece is the same for every
task fine-tuned from one trunk. ``run_frozen_trunk`` runs it once and keeps
what the side networks and outputs need; ``run_from_trunk`` finishes one
backbone from it. A DTL backbone's ``forward`` is the two in a row.
"""
from contextlib import nullcontext
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Dict, Iterable, Tuple

import torch
import torch.nn.functional as F

# the plan of a backbone without a side network (the frozen ``fixed`` one)
NO_SIDE_NETWORK = SimpleNamespace(w_blocks=(), g_blocks=())


@dataclass
class TrunkState:
    """The frozen trunk after block ``block``, before anything is added back.

    Blocks are numbered 1..N over all stages, as in :class:`CSNLayout`.
    """
    x: torch.Tensor  # output of block ``block``, tokens (B, E + H*W, C)
    hw_shape: Tuple[int, int]
    block: int
    # block -> its input, for the side networks' reads (w)
    inputs: Dict[int, torch.Tensor] = field(default_factory=dict)
    # block before ``block`` -> (its output, its grid), for the outputs
    # inside the trunk (pre-norm)
    outputs: Dict[int, tuple] = field(default_factory=dict)
    # stage -> its token grid (H, W), for the stages the trunk reached
    stage_hw: Dict[int, Tuple[int, int]] = field(default_factory=dict)


def grad_if(live: bool):
    """Frozen blocks whose input carries no graph run without autograd."""
    return nullcontext() if live else torch.no_grad()


@torch.no_grad()
def run_frozen_trunk(backbone,
                     x: torch.Tensor,
                     upto: int,
                     keep: Iterable[int] = (),
                     keep_outputs: Iterable[int] = None) -> TrunkState:
    """The embedding and blocks 1..``upto`` of ``backbone``'s trunk, without
    autograd, keeping the inputs of the blocks in ``keep`` and the outputs
    of the blocks in ``keep_outputs`` (default: the backbone's
    ``out_blocks``) before ``upto``."""
    total = backbone.num_blocks
    if not 1 <= upto <= total:
        raise ValueError(f'the shared trunk must end at a block in '
                         f'1..{total}, got {upto}')
    keep = set(keep)
    outputs = set(
        backbone.out_blocks if keep_outputs is None else keep_outputs)
    ends = backbone.stage_ends
    x, hw_shape = backbone.embed(x)
    state = TrunkState(x=x, hw_shape=hw_shape, block=upto)
    state.stage_hw[0] = hw_shape
    for block in range(1, upto + 1):
        if block in keep:
            state.inputs[block] = x
        x = backbone.run_block(block, x, hw_shape)
        if block == upto:
            break
        if block in outputs:
            state.outputs[block] = (x, hw_shape)
        if block in ends:  # the trunk ends in a later stage
            stage = ends.index(block)
            x, hw_shape = backbone.downsample(stage, x, hw_shape)
            state.stage_hw[stage + 1] = hw_shape
    state.x, state.hw_shape = x, hw_shape
    return state


def run_from_trunk(backbone,
                   state: TrunkState,
                   layout=None,
                   csn=None,
                   h=None) -> tuple:
    """The outputs of ``backbone`` from a trunk state: its side network
    (``csn`` laid out by ``layout``; None for a plain frozen trunk) first
    catches up on the trunk's kept block inputs (unless ``h``, its state
    after the trunk's last block, is given), then the blocks after the
    trunk run, each stage in turn: a w reads a block's input, the frozen
    block runs, a G adds to its output; at a stage's end its output, the
    downsampling and the side state's bridge.

    Every frozen block whose input carries no graph runs without autograd,
    so the blocks up to the first add-back keep nothing for backward. Under
    the backbone's ``with_cp`` the blocks, output norms, downsampling and
    the side network run as checkpointed regions. A w reads, and a G adds
    to, the patch tokens only (not a class token).
    """
    lay = layout or NO_SIDE_NETWORK
    _check_fits_trunk(backbone, lay, state, reads_needed=h is None)
    cp, extra = backbone.cp_policy, backbone.num_extra_tokens
    if csn is not None and h is None:
        h = csn.state_from_trunk(state, cp, extra)
    ends, outs = backbone.stage_ends, {}
    with torch.no_grad():  # the trunk's own outputs
        for block, (out, hw) in state.outputs.items():
            if block in backbone.out_blocks:
                outs[block] = backbone.block_output(block, out, hw)
    x, hw_shape = state.x, state.hw_shape
    for block in range(state.block, backbone.num_blocks + 1):
        if block > state.block:
            if block in lay.w_blocks:
                h = csn.read(block, x[:, extra:], h, cp)
            with grad_if(x.requires_grad):
                x = backbone.run_block(block, x, hw_shape)
        if block in lay.g_blocks:
            # to the patch tokens; zeros for the extra tokens
            signal = csn.fuse(block, h, hw_shape, cp)
            x = x + (F.pad(signal, (0, 0, extra, 0)) if extra else signal)
        if block in backbone.out_blocks:
            with grad_if(x.requires_grad):
                outs[block] = backbone.block_output(block, x, hw_shape)
        if block in ends[:-1]:
            stage = ends.index(block)
            with grad_if(x.requires_grad):
                x, hw_next = backbone.downsample(stage, x, hw_shape)
            if csn is not None:
                h = csn.bridge(stage, h, hw_shape, cp)
            hw_shape = hw_next
    return tuple(outs[b] for b in backbone.out_blocks)


def _check_fits_trunk(backbone, lay, state: TrunkState, reads_needed=True):
    early = [g for g in lay.g_blocks if g < state.block]
    if early:
        raise ValueError(f'the side network adds to block(s) {early}, '
                         f'inside the shared trunk (blocks 1..{state.block})')
    unkept = [
        w for w in lay.w_blocks
        if reads_needed and w <= state.block and w not in state.inputs
    ] + [
        b for b in backbone.out_blocks
        if b < state.block and b not in state.outputs
    ]
    if unkept:
        raise ValueError(f'the side network or the outputs need block(s) '
                         f'{sorted(unkept)} of the shared trunk, which it '
                         f'did not keep')
