"""DTLVisionTransformer: a frozen plain ViT plus a Compact Side Network.

The same CSN as on Swin (``CompactSideNetwork`` over a ``CSNLayout``), laid
out for one stage of ``num_layers`` blocks of one width: no bridges, and
``M`` (the first add-back block) defaults to the middle block, 7 of 12 for
ViT-B as in the paper.

Tokens and the side state. A ViT's tokens are ``E`` extra tokens (the class
token, if any) followed by the ``H*W`` patch tokens. The side state ``h``
covers the patch tokens only: w reads ``z_i[:, E:]``, G works on ``h`` as an
``H x W`` map (its depthwise convolution needs the grid, which the class
token has no place in) and adds to the patch tokens; the class token gets
nothing added. It still sees the adapted patch tokens through attention in
the blocks after M, and dense prediction reads only the patch tokens.
"""
from typing import Iterable, Optional, Set

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from .csn_layout import VIT_VARIANT_DEFAULTS, DTLOptions, build_layout
from .frozen_trunk import NO_SIDE_NETWORK, TrunkState, grad_if
from .side_network import CompactSideNetwork
from .vit_wrapper import PretrainedVisionTransformer

# the options that place bridges between stages
SWIN_ONLY_OPTIONS = ('csn', 'bridge', 'bridge_group_width')


@torch.no_grad()
def run_frozen_vit(backbone: PretrainedVisionTransformer,
                   x: torch.Tensor,
                   upto: int,
                   keep: Iterable[int] = ()) -> TrunkState:
    """The embedding and blocks 1..``upto`` of ``backbone.vit``, without
    autograd, keeping the inputs of the blocks in ``keep`` (tokens
    ``(B, E + H*W, C)``, class token included)."""
    if not 1 <= upto <= backbone.num_blocks:
        raise ValueError(f'the shared trunk must end at a block in '
                         f'1..{backbone.num_blocks}, got {upto}')
    keep = set(keep)
    x, hw_shape = backbone.embed(x)
    state = TrunkState(x=x, hw_shape=hw_shape, block=upto)
    for block in range(1, upto + 1):
        if block in keep:
            state.inputs[block] = x
        x = backbone.run_block(block, x)
    state.x = x
    return state


def run_vit_from_trunk(backbone: PretrainedVisionTransformer,
                       state: TrunkState,
                       layout=None,
                       csn: Optional[CompactSideNetwork] = None) -> tuple:
    """The output maps of ``backbone`` from a trunk state: its side network
    (``csn`` laid out by ``layout``; None for a plain frozen ViT) reads the
    trunk's kept block inputs, then the blocks after the trunk run.

    Blocks whose input carries no graph run without autograd, so the blocks
    up to the first add-back keep nothing for backward.
    """
    lay = layout or NO_SIDE_NETWORK
    early = [g for g in lay.g_blocks if g < state.block]
    if early:
        raise ValueError(f'the side network adds to block(s) {early}, '
                         f'inside the shared trunk (blocks 1..{state.block})')
    unkept = sorted(backbone.needs_from_trunk(state.block) - set(state.inputs))
    if unkept:
        raise ValueError(f'the side network or the outputs need the inputs '
                         f'of block(s) {unkept}, which the shared trunk did '
                         f'not keep')
    extra, hw_shape = backbone.num_extra_tokens, state.hw_shape
    cp = backbone.cp_policy
    x, h, live, outs = state.x, None, False, []
    for block in range(1, backbone.num_blocks + 1):
        in_trunk = block <= state.block
        if block in lay.w_blocks:
            z = state.inputs[block] if in_trunk else x
            h = csn.read(block, z[:, extra:], h, cp)
        if not in_trunk:
            with grad_if(live):
                x = backbone.run_block(block, x)
        if block in lay.g_blocks:
            # to the patch tokens; zeros for the class token
            x = x + F.pad(csn.fuse(block, h, hw_shape, cp), (0, 0, extra, 0))
            live = True
        if block in backbone.out_blocks:
            # an output inside the trunk: the next block's input
            out = state.inputs[block + 1] if block < state.block else x
            with grad_if(live):
                outs.append(backbone.block_output(block, out, hw_shape))
    return tuple(outs)


@MODELS.register_module()
class DTLVisionTransformer(PretrainedVisionTransformer):
    """A plain ViT with Disentangled Transfer Learning (DTLv1 / DTLv2 /
    DTLv2-LS).

    The ViT is frozen; the CSN (``self.csn``) holds every trainable weight.
    The embedding and blocks up to and including the first add-back block
    run under ``torch.no_grad()`` and keep no activations for backward.

    Args:
        variant (str): 'dtlv1', 'dtlv2' or 'dtlv2-ls'; sets the defaults of
            the DTL options, which are further keyword arguments
            (:class:`~dtl_mm.models.csn_layout.DTLOptions`). M defaults to
            the middle block (7 of 12); ``share='direct'`` is one G for the
            ViT's one stage; ``fusion_op`` works over the patch-token grid.
            The Swin-only options ``csn`` and ``bridge*`` are an error here
            (one stage, no bridges).
        with_cp (bool | str): activation checkpointing of what autograd
            goes through: the side network's reads and fusions, the blocks
            after M and their output norms (True: all recomputed;
            'selective': the blocks' wide matmul outputs kept,
            ``recompute.py``). The no-grad blocks up to M keep nothing
            either way.
        **kwargs: the DTL options, and ``PretrainedVisionTransformer``
            arguments.
    """

    def __init__(self, variant: str = 'dtlv2-ls', **kwargs):
        options = DTLOptions.pop_from(
            kwargs,
            variant,
            not_here=SWIN_ONLY_OPTIONS,
            backbone='a plain ViT: it is one stage (no bridges)',
            defaults=VIT_VARIANT_DEFAULTS)
        super().__init__(
            frozen=True, **self.frozen_only(type(self).__name__, kwargs))
        self.layout = build_layout(self.depths, self.channels, options)
        self.csn = CompactSideNetwork(self.layout)

    def forward(self, x):
        return self.forward_rest(self.forward_shared(x))

    def forward_shared(self,
                       x,
                       upto: Optional[int] = None,
                       keep: Optional[Iterable[int]] = None) -> TrunkState:
        """The embedding and frozen blocks 1..``upto`` (default: M), without
        autograd. ``keep``: blocks whose inputs to keep for side-network
        reads (default: this one's)."""
        upto = upto or self.layout.first_g
        return run_frozen_vit(
            self, x, upto,
            self.needs_from_trunk(upto) if keep is None else keep)

    def needs_from_trunk(self, upto: int) -> Set[int]:
        """The blocks whose inputs a trunk ending at ``upto`` must keep:
        the side network's reads there, and the outputs inside it."""
        return super().needs_from_trunk(upto) | {
            w
            for w in self.layout.w_blocks if w <= upto
        }

    def forward_rest(self, state: TrunkState) -> tuple:
        """This backbone's output maps from a trunk state that ends at or
        before its first add-back block."""
        return run_vit_from_trunk(self, state, self.layout, self.csn)
