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
from mmengine.registry import MODELS

from .csn_layout import VIT_VARIANT_DEFAULTS
from .dtl_backbone import DTLBackbone
from .dtl_wrapper import adapts
from .vit_wrapper import PretrainedVisionTransformer

# the options that place bridges between stages
SWIN_ONLY_OPTIONS = ('csn', 'bridge', 'bridge_group_width')


class PlainViTDTL(DTLBackbone):
    """DTL's options on a plain ViT of any library: M defaults to the
    middle block, and the options that place bridges are refused."""
    VARIANT_DEFAULTS = VIT_VARIANT_DEFAULTS
    NOT_HERE = SWIN_ONLY_OPTIONS
    NOT_HERE_WHY = 'a plain ViT: it is one stage (no bridges)'


@adapts('mmseg', 'VisionTransformer')
@MODELS.register_module()
class DTLVisionTransformer(PlainViTDTL, PretrainedVisionTransformer):
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
