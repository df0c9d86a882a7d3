"""DTLSwinTransformer: a frozen Swin plus a Compact Side Network (DTL)."""
from typing import Iterable, List, Optional

from mmengine.registry import MODELS

from .csn_layout import build_layout
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
            every option below (paper Sec. 4-5; the table is
            ``csn_layout.VARIANT_DEFAULTS``). The options are kept, typed
            and validated, as ``self.layout.options`` (a ``DTLOptions``).
        rank (int): d', the rank of every low-rank map (w and w').
        first_g_block (int): M, the first block whose output may get the side
            signal; None = the middle block (13 for 24 blocks).
        w_every (int), g_every (int): m and n of the sparsity rule.
        w_blocks, g_blocks (list[int]): explicit positions (1-based, global
            block numbers) overriding the rule; w reads a block's input, G
            adds to its output.
        share (str): 'none' (one G per position), 'direct' (one G per stage),
            'lshare' (one G per stage + gamma/beta, Eq. 9).
        csn (str): 'unified' (h crosses stages through a bridge) or
            'stage_local' (h reset to 0 at each stage, DTLv1).
        bridge (str): 'group' (group conv, C/x groups), 'depthwise', 'conv',
            'patch_merging' (a new trainable one) or 'frozen_patch_merging'
            (the backbone's own; its pretrained LayerNorm bias makes the
            model differ from the backbone at initialisation).
        bridge_group_width (int): x in groups = C/x.
        fusion (str): 'enhanced' (G = theta(g(h)) w' + h) or 'simple'
            (g(theta(h)), DTLv1).
        fusion_op (str): g: 'dwconv', 'avgpool' or 'conv'.
        kernel_size (int): k of g. beta (float): Swish's beta.
        with_cp (bool | str): activation checkpointing of everything
            autograd goes through: the side network (recomputed from the
            trunk inputs it reads, which are kept anyway), the blocks after
            the first add-back, their norms and PatchMerging. True
            recomputes all of it; 'selective' keeps the blocks' wide matmul
            outputs (``recompute.py``). The no-grad blocks before the first
            add-back keep nothing either way.
        **kwargs: ``PretrainedSwinTransformer`` / mmdet Swin arguments.
    """

    def __init__(self,
                 variant: str = 'dtlv2-ls',
                 rank: Optional[int] = None,
                 first_g_block: Optional[int] = None,
                 w_every: Optional[int] = None,
                 g_every: Optional[int] = None,
                 w_blocks: Optional[List[int]] = None,
                 g_blocks: Optional[List[int]] = None,
                 share: Optional[str] = None,
                 csn: Optional[str] = None,
                 bridge: Optional[str] = None,
                 bridge_group_width: Optional[int] = None,
                 fusion: Optional[str] = None,
                 fusion_op: Optional[str] = None,
                 kernel_size: Optional[int] = None,
                 beta: Optional[float] = None,
                 **kwargs):
        super().__init__(
            frozen=True, **self.frozen_only(type(self).__name__, kwargs))
        self.layout = build_layout(
            self.depths,
            self.channels,
            variant,
            rank=rank,
            first_g_block=first_g_block,
            w_every=w_every,
            g_every=g_every,
            w_blocks=w_blocks,
            g_blocks=g_blocks,
            share=share,
            csn=csn,
            bridge=bridge,
            bridge_group_width=bridge_group_width,
            fusion=fusion,
            fusion_op=fusion_op,
            kernel_size=kernel_size,
            beta=beta)
        self.csn = CompactSideNetwork(self.layout)

    def forward(self, x):
        if self.cp_policy is True:
            # The trunk is recomputed in backward too (without autograd),
            # from the image: the side network's reads then keep no trunk
            # block inputs, the largest of which sit at 1/4 and 1/8 scale.
            state, h = recompute(True, self._trunk_and_side_state, x)
            return run_after_trunk(self, state, h, self.layout, self.csn)
        return self.forward_rest(self.forward_shared(x))

    def _trunk_and_side_state(self, x):
        state = self.forward_shared(x)
        h = self.csn.state_from_trunk(state, self.swin.stages)
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
