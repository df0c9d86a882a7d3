"""The frozen Swin walked in two pieces: the trunk up to a block, and the
rest of the backbone (side network, later blocks, stage outputs) from there.

Up to the first block that receives a side signal, a DTL backbone computes
exactly what its frozen Swin computes, so that piece is the same for every
task fine-tuned from one Swin. ``run_frozen_trunk`` runs it once and keeps
what the side networks read; ``run_from_trunk`` finishes one backbone from
it. ``DTLSwinTransformer.forward`` is the two in a row.
"""
from contextlib import nullcontext
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Dict, Iterable, Tuple

import torch

# the plan of a backbone without a side network (the frozen ``fixed`` one)
NO_SIDE_NETWORK = SimpleNamespace(w_blocks=(), g_blocks=(), bridge_stages=())


@dataclass
class TrunkState:
    """The frozen Swin after block ``block``, before anything is added back.

    Blocks are numbered 1..N over all stages, as in :class:`CSNLayout`.
    """
    x: torch.Tensor  # output of block ``block``, (B, H*W, C)
    hw_shape: Tuple[int, int]
    block: int
    # block -> its input, for the side networks' reads (w)
    inputs: Dict[int, torch.Tensor] = field(default_factory=dict)
    # stage finished inside the trunk -> its last block's output (pre-norm)
    stage_ends: Dict[int, torch.Tensor] = field(default_factory=dict)
    # stage -> its token grid (H, W)
    stage_hw: Dict[int, Tuple[int, int]] = field(default_factory=dict)


def grad_if(live: bool):
    """Frozen blocks whose input carries no graph run without autograd."""
    return nullcontext() if live else torch.no_grad()


@torch.no_grad()
def run_frozen_trunk(backbone,
                     x: torch.Tensor,
                     upto: int,
                     keep: Iterable[int] = ()) -> TrunkState:
    """Patch embedding and blocks 1..``upto`` of ``backbone.swin``, without
    autograd, keeping the inputs of the blocks in ``keep``."""
    total = sum(backbone.depths)
    if not 1 <= upto <= total:
        raise ValueError(f'the shared trunk must end at a block in '
                         f'1..{total}, got {upto}')
    keep = set(keep)
    x, hw_shape = backbone.embed(x)
    state = TrunkState(x=x, hw_shape=hw_shape, block=upto)
    for s, stage, first in numbered_stages(backbone.swin):
        state.stage_hw[s] = hw_shape
        for block, blk in enumerate(stage.blocks, first):
            if block in keep:
                state.inputs[block] = x
            x = blk(x, hw_shape)
            if block == upto:
                state.x, state.hw_shape = x, hw_shape
                return state
        # the trunk ends in a later stage: this one's output is final
        state.stage_ends[s] = x
        x, hw_shape = stage.downsample(x, hw_shape)


def run_from_trunk(backbone,
                   state: TrunkState,
                   layout=None,
                   csn=None) -> tuple:
    """The stage outputs of ``backbone`` from a trunk state: its side network
    (``csn`` laid out by ``layout``; None for a plain frozen Swin) first
    catches up on the trunk's kept block inputs, then the blocks after the
    trunk run, each stage in turn.

    Every frozen block whose input carries no graph runs without autograd,
    so the blocks up to the first add-back keep nothing for backward. Under
    the backbone's ``with_cp`` the blocks, norms, PatchMerging and the side
    network run as checkpointed regions.
    """
    _check_fits_trunk(layout or NO_SIDE_NETWORK, state)
    h = None if csn is None else csn.state_from_trunk(state,
                                                      backbone.cp_policy)
    return run_after_trunk(backbone, state, h, layout, csn)


def run_after_trunk(backbone,
                    state: TrunkState,
                    h=None,
                    layout=None,
                    csn=None) -> tuple:
    """:func:`run_from_trunk` once the side network has caught up: ``h`` is
    its state after the trunk's last block."""
    lay = layout or NO_SIDE_NETWORK
    x, hw_shape, outs = state.x, state.hw_shape, []
    for s, stage, first in numbered_stages(backbone.swin):
        done = s in state.stage_ends  # the trunk ran the stage and its merge
        if not done:
            x, h = run_stage(backbone, stage, first, x, hw_shape, h,
                             state.block, lay, csn)
        if s in backbone.out_indices:
            end = state.stage_ends[s] if done else x
            with grad_if(end.requires_grad):
                outs.append(
                    backbone.stage_output(
                        s, end, state.stage_hw[s] if done else hw_shape))
        if done or stage.downsample is None:
            continue
        with grad_if(x.requires_grad):
            x, hw_next = backbone.run_downsample(stage, x, hw_shape)
        if csn is not None:
            h = csn.bridge(s, h, hw_shape, backbone.cp_policy)
        hw_shape = hw_next
    return tuple(outs)


def run_stage(backbone, stage, first: int, x, hw_shape, h, trunk_end: int, lay,
              csn):
    """One stage's blocks after the trunk's last block ``trunk_end``: a w
    reads a block's input, the frozen block runs, a G adds to its output.
    ``first``: the stage's first block number. Returns (x, h)."""
    cp = backbone.cp_policy
    for block, blk in enumerate(stage.blocks, first):
        if block > trunk_end:
            if block in lay.w_blocks:
                h = csn.read(block, x, h, cp)
            with grad_if(x.requires_grad):
                x = backbone.run_block(blk, x, hw_shape)
        if block >= trunk_end and block in lay.g_blocks:
            x = x + csn.fuse(block, h, hw_shape, cp)
    return x, h


def numbered_stages(swin):
    """(stage index, stage, number of its first block) for each stage; blocks
    are numbered 1..N over all stages."""
    first = 1
    for s, stage in enumerate(swin.stages):
        yield s, stage, first
        first += len(stage.blocks)


def _check_fits_trunk(lay, state: TrunkState):
    early = [g for g in lay.g_blocks if g < state.block]
    if early:
        raise ValueError(f'the side network adds to block(s) {early}, '
                         f'inside the shared trunk (blocks 1..{state.block})')
    unkept = [
        w for w in lay.w_blocks if w <= state.block and w not in state.inputs
    ]
    if unkept:
        raise ValueError(f'the side network reads block(s) {unkept}, whose '
                         f'inputs the shared trunk did not keep')
