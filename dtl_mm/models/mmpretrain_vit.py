"""Plain ViTs from mmpretrain (DeiT, ViT-B/L, DINOv2 S/B/L/g) as frozen
dense-prediction trunks, with or without a Compact Side Network.

``PretrainedMMPretrainViT`` is a :class:`PlainViTTrunk` over mmpretrain's
``VisionTransformer``, as :class:`PretrainedVisionTransformer` is over
mmseg's: only the construction, the embedding and the weight names
(``vit_keys``) differ, so the blocks, output maps, checkpointing, lean
checkpoints and multi-task sharing are the same code. ``DTLMMPretrainViT``
is DTL on it with the plain-ViT options of :class:`DTLVisionTransformer`.

Tokens. mmpretrain's ViT puts ``num_extra_tokens`` tokens (the class token;
none with ``with_cls_token=False``) before the patch tokens. w reads and G
adds to the patch tokens only, as on mmseg's ViT; extra tokens take part in
attention but get nothing added. mmpretrain 1.2.0 has no register tokens, so
DINOv2 releases with registers are refused by the loader, by name.

Layer scale (DINOv2, DeiT III) sits inside each frozen block
(``attn.gamma1``, ``ffn.gamma2`` scale the two residual branches) and is
loaded and frozen with the block. G adds to the block's *output*, after
both scaled residuals, so its signal is not scaled by the frozen gammas
(~1e-5 at DINOv2's init, O(0.1-1) after its training).

mmpretrain is imported when the first such backbone is built (it needs
torchvision; the pinned stack of ``tools/install.sh`` has both).
"""
import copy
from typing import Union

import torch
from mmengine.registry import MODELS

from .dtl_vit import PlainViTDTL
from .dtl_wrapper import adapts
from .trunk_wrapper import library_backbone
from .vit_keys import MMPRETRAIN_VIT_KEYS
from .vit_wrapper import PlainViTTrunk

# DINOv2 as mmpretrain's configs build it (configs/dinov2/*): patch 14,
# layer scale, the giant with a fused SwiGLU MLP; base and large are
# mmpretrain's 'base' / 'large' archs
_DINOV2 = dict(patch_size=14, layer_scale_init_value=1e-5)
DINOV2_ARCHS = {
    'dinov2-small':
    dict(arch='dinov2-small'),
    'dinov2-base':
    dict(arch='base'),
    'dinov2-large':
    dict(arch='large'),
    'dinov2-giant':
    dict(arch='dinov2-giant', layer_cfgs=dict(ffn_type='swiglu_fused')),
}
for _short in ('s', 'b', 'l', 'g'):
    DINOV2_ARCHS['dinov2-' + _short] = next(
        v for k, v in DINOV2_ARCHS.items() if k.startswith('dinov2-' + _short))


def mmpretrain_vit_args(vit_args: dict) -> dict:
    """The arguments for mmpretrain's ``VisionTransformer``: a ``dinov2-*``
    arch expands to mmpretrain's arch plus DINOv2's patch size and layer
    scale (explicit arguments win)."""
    args = dict(vit_args)
    arch = args.get('arch', 'base')
    if isinstance(arch, str) and arch.lower() in DINOV2_ARCHS:
        preset = dict(_DINOV2, **DINOV2_ARCHS[arch.lower()])
        args = dict(preset, **{k: v for k, v in args.items() if k != 'arch'})
        args['arch'] = preset['arch']
    return args


@MODELS.register_module()
class PretrainedMMPretrainViT(PlainViTTrunk):
    """mmpretrain's ViT with all-or-nothing weight loading, optionally
    frozen; outputs the patch-token maps of ``out_indices`` for a neck.

    Args:
        arch (str | dict): an mmpretrain arch ('deit-small', 'deit-base',
            'base', 'large', ...) or 'dinov2-small' / 'dinov2-base' /
            'dinov2-large' / 'dinov2-giant' (patch 14, layer scale, the
            giant's SwiGLU MLP, as mmpretrain's DINOv2 configs).
        frozen, lean_checkpoint, with_cp: see
            :class:`PretrainedVisionTransformer`.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            in mmpretrain's, timm's or the official DINOv2 release's layout
            (``vit_keys``); the position embedding is resized
            to ``img_size`` as mmpretrain resizes it.
        **vit_args: mmpretrain ``VisionTransformer`` arguments
            (``img_size``, ``patch_size``, ``out_indices``, ``final_norm``,
            ``drop_path_rate``, ``with_cls_token``, ``layer_cfgs``, ...).
    """
    FAMILY = 'mmpretrain ViT'
    KEYS = MMPRETRAIN_VIT_KEYS

    def build_trunk(self, arch: Union[str, dict] = 'base', **vit_args):
        for name, ok in (('out_type', 'featmap'), ('frozen_stages', -1)):
            if vit_args.pop(name, ok) != ok:
                raise ValueError(
                    f'{type(self).__name__}: `{name}` is not supported: the '
                    f'backbone outputs patch-token maps for a neck, and '
                    f'`frozen` freezes the whole trunk')
        out_indices = vit_args.pop('out_indices', -1)
        args = mmpretrain_vit_args(dict(vit_args, arch=copy.deepcopy(arch)))
        vit = library_backbone('mmpretrain.models', 'VisionTransformer',
                               'mmpretrain ViT')(
                                   out_type='featmap', **args)
        # checked here: mmpretrain's own check lets index N through
        n = len(vit.layers)
        indices = [out_indices] if isinstance(out_indices, int) else \
            list(out_indices)
        bad = [i for i in indices if not -n <= i < n]
        if bad:
            raise ValueError(f'out_indices {bad} are not blocks 0..{n - 1} '
                             f'of this ViT')
        vit.out_indices = [i % n for i in indices]
        return vit

    @property
    def num_extra_tokens(self) -> int:
        """Tokens before the patch tokens in the blocks: the class token
        unless ``with_cls_token=False``."""
        return self.vit.num_extra_tokens

    def embed(self, x):
        """mmpretrain's forward up to the first block: patch embedding,
        class token, position embedding resized to the input's patch grid,
        dropout, pre-norm. Returns (tokens (B, E + H*W, C), (H, W))."""
        from mmpretrain.models.utils import resize_pos_embed
        vit = self.vit
        x, hw_shape = vit.patch_embed(x)
        if vit.cls_token is not None:
            x = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + resize_pos_embed(
            vit.pos_embed,
            vit.patch_resolution,
            hw_shape,
            mode=vit.interpolate_mode,
            num_extra_tokens=vit.num_extra_tokens)
        return vit.pre_norm(vit.drop_after_pos(x)), tuple(hw_shape)

    def architecture(self) -> dict:
        vit = self.vit
        proj = vit.patch_embed.projection
        return dict(
            library='mmpretrain',
            depths=tuple(self.depths),
            channels=tuple(self.channels),
            patch=(tuple(proj.kernel_size), tuple(proj.stride)),
            num_heads=tuple(layer.attn.num_heads for layer in vit.layers),
            extra_tokens=self.num_extra_tokens,
            pos_embed_grid=tuple(vit.patch_resolution),
            interpolate_mode=vit.interpolate_mode,
            pre_norm=type(vit.pre_norm).__name__,
            ffn=tuple(type(layer.ffn).__name__ for layer in vit.layers))

    def share_trunk_of(self, other):
        vit, shared = self.vit, other.vit
        for name in ('patch_embed', 'cls_token', 'pos_embed', 'pre_norm',
                     'layers'):
            setattr(vit, name, getattr(shared, name))


@adapts('mmpretrain', 'VisionTransformer')
@MODELS.register_module()
class DTLMMPretrainViT(PlainViTDTL, PretrainedMMPretrainViT):
    """DTL (DTLv1 / DTLv2 / DTLv2-LS) on a frozen mmpretrain ViT: the
    options, side network and guarantees of :class:`DTLVisionTransformer`
    (M defaults to the middle block: 7 of 12, 13 of 24, 21 of 40), with the
    ViT of :class:`PretrainedMMPretrainViT`."""
