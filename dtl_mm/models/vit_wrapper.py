"""A pretrained plain ViT, optionally frozen, as a dense-prediction
backbone: what mmseg's and mmpretrain's ViTs share (:class:`PlainViTTrunk`),
and mmseg's ``VisionTransformer`` (ViT, DeiT) under it.

It takes mmseg's ``VisionTransformer`` arguments unchanged (``img_size``,
``patch_size``, ``embed_dims``, ``num_layers``, ``num_heads``,
``out_indices``, ``final_norm``, ...), so a config of mmseg's ViT recipe
swaps ``type='VisionTransformer'`` for one of ours and inherits the rest.
It returns the patch tokens of the blocks in ``out_indices`` as
``(B, C, H/p, W/p)`` maps, all of one width and scale, for a neck that
builds the pyramid (mmseg's ``MultiLevelNeck``). The class token takes part
in attention but is not an output.

mmseg is imported when the first ViT backbone is built, so dtl_mm's Swin
detectors still need no mmseg.
"""
import re

import torch
from mmengine.registry import MODELS

from .recompute import recompute
from .side_network import to_map
from .trunk_wrapper import PretrainedTrunk, library_backbone
from .vit_keys import MMSEG_VIT_KEYS


class PlainViTTrunk(PretrainedTrunk):
    """A plain ViT of one library as the trunk: one stage of blocks of one
    width, outputs the patch-token maps of ``out_indices`` (from 0).

    A library's subclass builds the trunk, embeds, and names its weights
    (``KEYS``); the blocks, outputs, checkpointing and loading are this
    class's."""
    TRUNK = 'vit'
    TRUNK_NAME = 'ViT'
    # the final norm acts on the last block's output, after any add-back
    OWN_KEYS = re.compile(r'^ln1\.')

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # one stage, one width: the CSN layout's view of a plain ViT; blocks
        # numbered 1..N as in CSNLayout, out_indices count from 0
        self.depths = (len(self.vit.layers), )
        bad = [i for i in self.vit.out_indices if not 0 <= i < self.num_blocks]
        if bad:
            raise ValueError(f'out_indices {bad} are not blocks 0..'
                             f'{self.num_blocks - 1} of this ViT')
        self.out_blocks = tuple(i + 1 for i in self.vit.out_indices)
        self.channels = (self.vit.pos_embed.shape[-1], )

    def run_block(self, block: int, x, hw_shape=None):
        """Block ``block`` (from 1), a checkpointed region under
        :attr:`cp_policy` when autograd records it."""
        return recompute(self.cp_policy, self.vit.layers[block - 1], x)

    def downsample(self, stage: int, x, hw_shape):
        raise ValueError('a plain ViT is one stage: nothing to downsample')

    def block_output(self, block: int, x, hw_shape):
        """The output map of block ``block`` (in ``out_blocks``): after the
        final norm for the last block, as the libraries apply it; patch
        tokens only."""
        return recompute(self.cp_policy, self._block_output, block, x,
                         hw_shape)

    def _block_output(self, block: int, x, hw_shape):
        if block == self.num_blocks and self.vit.final_norm:
            x = self.vit.norm1(x)
        return to_map(x[:, self.num_extra_tokens:], hw_shape).contiguous()


@MODELS.register_module()
class PretrainedVisionTransformer(PlainViTTrunk):
    """mmseg's ViT with layout-detecting, all-or-nothing weight loading.

    Args:
        frozen (bool): freeze every ViT parameter (patch embedding, class
            token, position embedding, blocks, final norm) and run the trunk
            without autograd.
        lean_checkpoint (bool): see :class:`PretrainedTrunk`.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            (a path, ``~`` path or http(s) URL) in timm's (DeiT, ViT
            releases), mmpretrain's or mmseg's layout, or a whole dtl_mm /
            mmseg / mmdet model checkpoint; the position embedding is
            resized to ``img_size``; a weight left unfilled is an error.
        with_cp (bool | str): activation checkpointing of the blocks and
            output norms autograd goes through (and a side network): True
            recomputes each in backward, 'selective' keeps the outputs of
            the wide matrix products (``recompute.py``). Non-reentrant,
            unlike mmseg's ViT option of the same name.
        **vit_args: mmseg ``VisionTransformer`` arguments; mmseg's ViT-B
            configs output blocks ``out_indices=(2, 5, 8, 11)`` (from 0).
    """
    FAMILY = 'ViT'
    KEYS = MMSEG_VIT_KEYS

    def build_trunk(self, **vit_args):
        for name in ('output_cls_token', 'out_origin'):
            if vit_args.get(name):
                raise ValueError(
                    f'{type(self).__name__}: `{name}` is not supported: the '
                    f'backbone outputs patch-token maps for a neck')
        # the blocks are checkpointed here (run_block), not by mmseg's
        # reentrant with_cp
        return library_backbone('mmseg.models.backbones', 'VisionTransformer',
                                'ViT')(
                                    with_cp=False, **vit_args)

    @property
    def num_extra_tokens(self) -> int:
        """Tokens before the patch tokens in the blocks: the class token."""
        return 1 if self.vit.with_cls_token else 0

    def embed(self, x):
        """Patch embedding, class token, position embedding (resized to the
        input's patch grid), dropout, pre-norm: mmseg's forward up to the
        first block. Returns (tokens (B, E + H*W, C), (H, W))."""
        vit = self.vit
        B = x.shape[0]
        x, hw_shape = vit.patch_embed(x)
        x = torch.cat((vit.cls_token.expand(B, -1, -1), x), dim=1)
        x = vit._pos_embeding(x, hw_shape, vit.pos_embed)
        if not vit.with_cls_token:
            x = x[:, 1:]
        if vit.pre_norm:
            x = vit.pre_ln(x)
        return x, tuple(hw_shape)

    def architecture(self) -> dict:
        vit = self.vit
        proj = vit.patch_embed.projection
        return dict(
            depths=tuple(self.depths),
            channels=tuple(self.channels),
            patch=(tuple(proj.kernel_size), tuple(proj.stride)),
            num_heads=tuple(layer.attn.num_heads for layer in vit.layers),
            extra_tokens=self.num_extra_tokens,
            pos_embed_grid=tuple(s // vit.patch_size for s in vit.img_size),
            interpolate_mode=vit.interpolate_mode,
            pre_norm=bool(vit.pre_norm))

    def share_trunk_of(self, other):
        vit, shared = self.vit, other.vit
        names = ('patch_embed', 'cls_token', 'pos_embed', 'layers')
        for name in names + (('pre_ln', ) if vit.pre_norm else ()):
            setattr(vit, name, getattr(shared, name))
