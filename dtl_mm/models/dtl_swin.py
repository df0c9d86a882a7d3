"""DTLSwinTransformer: a frozen Swin plus a Compact Side Network (DTL)."""
from mmengine.registry import MODELS

from .dtl_backbone import DTLBackbone
from .dtl_wrapper import adapts
from .swin_wrapper import PretrainedSwinTransformer


@adapts('mmdet', 'SwinTransformer')
@MODELS.register_module()
class DTLSwinTransformer(DTLBackbone, PretrainedSwinTransformer):
    """Swin with Disentangled Transfer Learning (DTLv1 / DTLv2 / DTLv2-LS):
    :class:`~dtl_mm.models.dtl_backbone.DTLBackbone` on mmdet's Swin
    (:class:`PretrainedSwinTransformer`).

    Args:
        variant (str): 'dtlv1', 'dtlv2' or 'dtlv2-ls'; sets the defaults of
            the DTL options (``DTLOptions``), which are further keyword
            arguments. M, the first add-back block, defaults to the middle
            block (13 of 24 for Swin-B/L).
        with_cp (bool | str): activation checkpointing of everything
            autograd goes through: the side network (recomputed from the
            trunk inputs it reads, which are kept anyway), the blocks after
            the first add-back, their norms and PatchMerging. True
            recomputes all of it; 'selective' keeps the blocks' wide matmul
            outputs (``recompute.py``). The no-grad blocks before the first
            add-back keep nothing either way.
        recompute_trunk (bool): also recompute the frozen trunk in backward
            (see ``DTLBackbone``): the trunk block inputs the side network
            reads (the largest at 1/4 and 1/8 scale) are then not kept.
        **kwargs: the DTL options, and ``PretrainedSwinTransformer`` /
            mmdet Swin arguments.
    """
