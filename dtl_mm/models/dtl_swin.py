"""DTLSwinTransformer: a frozen Swin plus a Compact Side Network (DTL)."""
from contextlib import nullcontext
from typing import List, Optional

import torch

from .csn_layout import build_layout
from .side_network import CompactSideNetwork
from .swin_wrapper import PretrainedSwinTransformer


class DTLSwinTransformer(PretrainedSwinTransformer):
    """Swin with Disentangled Transfer Learning (DTLv1 / DTLv2 / DTLv2-LS).

    The Swin is frozen; the CSN (``self.csn``) holds every trainable weight.
    Blocks up to and including the first add-back block run under
    ``torch.no_grad()``: nothing trainable acts on them, so they keep no
    activations for backward - that is where DTL saves its memory.

    Args:
        variant (str): 'dtlv1', 'dtlv2' or 'dtlv2-ls'; sets the defaults of
            every option below (paper Sec. 4-5, SPEC §2).
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
        with_cp (bool): (a Swin argument) activation checkpointing; only the
            blocks autograd goes through (after the first add-back) are
            affected, the no-grad blocks before them keep nothing anyway.
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
        super().__init__(frozen=True,
                         **self.frozen_only(type(self).__name__, kwargs))
        self.layout = build_layout(
            self.depths, self.channels, variant, rank=rank,
            first_g_block=first_g_block, w_every=w_every, g_every=g_every,
            w_blocks=w_blocks, g_blocks=g_blocks, share=share, csn=csn,
            bridge=bridge, bridge_group_width=bridge_group_width,
            fusion=fusion, fusion_op=fusion_op, kernel_size=kernel_size,
            beta=beta)
        self.csn = CompactSideNetwork(self.layout)

    def forward(self, x):
        lay, csn = self.layout, self.csn
        with torch.no_grad():
            x, hw_shape = self.embed(x)
        h = None  # side state; None until the first w reads something
        live = False  # does x carry a graph yet (after the first add-back)?
        outs, block = [], 0
        for s, stage in enumerate(self.swin.stages):
            for blk in stage.blocks:
                block += 1
                if block in lay.w_blocks:
                    h = csn.read(block, x, h)
                with grad_if(live):
                    x = blk(x, hw_shape)
                if block in lay.g_blocks:
                    x = x + csn.fuse(block, h, hw_shape)
                    live = True
            with grad_if(live):
                if s in self.out_indices:
                    outs.append(self.stage_output(s, x, hw_shape))
                if stage.downsample is None:
                    break
                hw_in = hw_shape
                x, hw_shape = stage.downsample(x, hw_shape)
            if h is not None and s in lay.bridge_stages:
                h = csn.bridge(s, h, hw_in, stage.downsample)
            else:
                h = None  # stage-local CSN, or no G after this stage
        return tuple(outs)


def grad_if(live: bool):
    """Frozen blocks whose input carries no graph run without autograd."""
    return nullcontext() if live else torch.no_grad()
