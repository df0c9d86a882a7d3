"""DTLSwinTransformer: a frozen Swin plus a Compact Side Network (DTL)."""
from typing import Iterable, Optional

from mmengine.registry import MODELS

from .csn_layout import DTLOptions, build_layout
from .frozen_trunk import (TrunkState, run_after_trunk, run_from_trunk,
                           run_frozen_trunk)
from .recompute import recompute
from .side_network import CompactSideNetwork
from .swin_wrapper import PretrainedSwinTransformer


@MODELS.register_module()
class DTLSwinTransformer(PretrainedSwinTransformer):
    """Swin with Disentangled Transfer Learning (DTLv1 / DTLv2 / DTLv2-LS).

    The Swin is frozen; the CSN (``self.csn``) holds every trainable weight.
    Blocks up to and including the first add-back block run under
    ``torch.no_grad()``: nothing trainable acts on them, so they keep no
    activations for backward - that is where DTL saves its memory.

    Args:
        variant (str): 'dtlv1', 'dtlv2' or 'dtlv2-ls'; sets the defaults of
            the DTL options, which are further keyword arguments
            (:class:`~dtl_mm.models.csn_layout.DTLOptions` documents each:
            rank, first_g_block, w_every, g_every, w_blocks, g_blocks,
            share, csn, bridge, bridge_group_width, fusion, fusion_op,
            kernel_size, beta). They are kept, typed and validated, as
            ``self.layout.options``.
        with_cp (bool | str): activation checkpointing of everything
            autograd goes through: the side network (recomputed from the
            trunk inputs it reads, which are kept anyway), the blocks after
            the first add-back, their norms and PatchMerging. True
            recomputes all of it; 'selective' keeps the blocks' wide matmul
            outputs (``recompute.py``). The no-grad blocks before the first
            add-back keep nothing either way.
        recompute_trunk (bool): in training, also recompute the frozen
            trunk (patch embedding and blocks 1..M, without autograd) in
            backward, from the image, with the side network's state after
            it: the trunk block inputs the side network reads (the largest
            at 1/4 and 1/8 scale) are then not kept. The lowest memory, for
            a second forward of the trunk; independent of ``with_cp``.
        **kwargs: the DTL options, and ``PretrainedSwinTransformer`` /
            mmdet Swin arguments.
    """

    def __init__(self,
                 variant: str = 'dtlv2-ls',
                 recompute_trunk: bool = False,
                 **kwargs):
        if not isinstance(recompute_trunk, bool):
            raise TypeError(f'recompute_trunk: True or False, got '
                            f'{recompute_trunk!r}')
        options = DTLOptions.pop_from(kwargs, variant)
        super().__init__(
            frozen=True, **self.frozen_only(type(self).__name__, kwargs))
        self.recompute_trunk = recompute_trunk
        self.layout = build_layout(self.depths, self.channels, options)
        self.csn = CompactSideNetwork(
            self.layout, [stage.downsample for stage in self.swin.stages])

    def forward(self, x):
        if self.recompute_trunk and self.training:
            # the side network's reads then keep no trunk block inputs
            state, h = recompute(True, self._trunk_and_side_state, x)
            return run_after_trunk(self, state, h, self.layout, self.csn)
        return self.forward_rest(self.forward_shared(x))

    def _trunk_and_side_state(self, x):
        state = self.forward_shared(x)
        h = self.csn.state_from_trunk(state)
        state.inputs.clear()  # read; nothing outside the region keeps them
        return state, h

    def forward_shared(self,
                       x,
                       upto: Optional[int] = None,
                       keep: Optional[Iterable[int]] = None) -> TrunkState:
        """Patch embedding and the frozen blocks 1..``upto`` (default: the
        first add-back block M), without autograd: the part every task
        fine-tuned from this Swin computes identically. ``keep``: blocks
        whose inputs to keep for side-network reads (default: this one's).
        """
        lay = self.layout
        return run_frozen_trunk(self, x, upto or lay.first_g,
                                lay.w_blocks if keep is None else keep)

    def forward_rest(self, state: TrunkState) -> tuple:
        """This backbone's stage outputs from a trunk state that ends at or
        before its first add-back block."""
        return run_from_trunk(self, state, self.layout, self.csn)
