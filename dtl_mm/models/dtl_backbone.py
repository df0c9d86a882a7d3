"""What makes a pretrained trunk a DTL backbone, for every trunk family.

:class:`DTLBackbone` is mixed in before a family's pretrained wrapper
(``DTLSwinTransformer(DTLBackbone, PretrainedSwinTransformer)``): it takes
the DTL options out of the keyword arguments, freezes the trunk, builds the
layout and the Compact Side Network for the trunk's stages, and runs the
two halves of the walk (``frozen_trunk.py``). The wrapper supplies the
trunk interface and nothing DTL-specific.
"""
from typing import Iterable, Optional

from .csn_layout import VARIANT_DEFAULTS, DTLOptions, build_layout
from .frozen_trunk import TrunkState, run_from_trunk, run_frozen_trunk
from .recompute import recompute
from .side_network import CompactSideNetwork


class DTLBackbone:
    """A frozen trunk plus a Compact Side Network (DTLv1 / DTLv2 /
    DTLv2-LS).

    The trunk is frozen; the CSN (``self.csn``) holds every trainable
    weight. The embedding and blocks up to and including the first
    add-back block M run under ``torch.no_grad()``: nothing trainable acts
    on them, so they keep no activations for backward - that is where DTL
    saves its memory.

    Args:
        variant (str): 'dtlv1', 'dtlv2' or 'dtlv2-ls'; sets the defaults of
            the DTL options, which are further keyword arguments
            (:class:`~dtl_mm.models.csn_layout.DTLOptions` documents each:
            rank, first_g_block, w_every, g_every, w_blocks, g_blocks,
            share, csn, bridge, bridge_group_width, fusion, fusion_op,
            kernel_size, beta). They are kept, typed and validated, as
            ``self.layout.options``.
        recompute_trunk (bool): in training, also recompute the frozen
            trunk (embedding and blocks 1..M, without autograd) in backward,
            from the image, with the side network's state after it: the
            trunk block inputs the side network reads are then not kept.
            The lowest memory, for a second forward of the trunk;
            independent of ``with_cp``.
        **kwargs: the DTL options, and the family wrapper's arguments.
    """

    VARIANT_DEFAULTS = VARIANT_DEFAULTS  # per variant, for this family
    NOT_HERE = ()  # DTL options this family has no use for (an error)
    NOT_HERE_WHY = 'this backbone'

    def __init__(self,
                 variant: str = 'dtlv2-ls',
                 recompute_trunk: bool = False,
                 **kwargs):
        if not isinstance(recompute_trunk, bool):
            raise TypeError(f'recompute_trunk: True or False, got '
                            f'{recompute_trunk!r}')
        options = DTLOptions.pop_from(
            kwargs,
            variant,
            not_here=self.NOT_HERE,
            backbone=self.NOT_HERE_WHY,
            defaults=self.VARIANT_DEFAULTS)
        super().__init__(
            frozen=True, **self.frozen_only(type(self).__name__, kwargs))
        self.recompute_trunk = recompute_trunk
        self.layout = build_layout(self.depths, self.channels, options)
        self.csn = CompactSideNetwork(self.layout, self.frozen_merges())

    def forward(self, x):
        if self.recompute_trunk and self.training:
            # the side network's reads then keep no trunk block inputs
            state, h = recompute(True, self._trunk_and_side_state, x)
            return run_from_trunk(self, state, self.layout, self.csn, h)
        return self.forward_rest(self.forward_shared(x))

    def _trunk_and_side_state(self, x):
        state = self.forward_shared(x)
        h = self.csn.state_from_trunk(state, False, self.num_extra_tokens)
        state.inputs.clear()  # read; nothing outside the region keeps them
        return state, h

    def forward_shared(
            self,
            x,
            upto: Optional[int] = None,
            keep: Optional[Iterable[int]] = None,
            keep_outputs: Optional[Iterable[int]] = None) -> TrunkState:
        """The embedding and the frozen blocks 1..``upto`` (default: the
        first add-back block M), without autograd: the part every task
        fine-tuned from this trunk computes identically. ``keep``: blocks
        whose inputs to keep for side-network reads (default: this one's);
        ``keep_outputs``: blocks whose outputs to keep (default: this
        one's outputs)."""
        lay = self.layout
        upto = upto or lay.first_g
        return run_frozen_trunk(self, x, upto,
                                [w for w in lay.w_blocks
                                 if w <= upto] if keep is None else keep,
                                keep_outputs)

    def forward_rest(self, state: TrunkState) -> tuple:
        """This backbone's outputs from a trunk state that ends at or before
        its first add-back block."""
        return run_from_trunk(self, state, self.layout, self.csn)
