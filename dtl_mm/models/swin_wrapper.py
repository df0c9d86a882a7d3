"""A pretrained mmdet Swin, optionally frozen: the base every variant uses.

Like mmpretrain's ``LoRAModel``, the wrapper builds the wrapped backbone and
freezes it in ``__init__``; mmengine wraps the model for DDP before
``init_weights``/``train()`` run, so freezing any later would change the set
of parameters DDP expects.

It takes the arguments of mmdet's ``SwinTransformer`` unchanged, so a config
swaps ``type='SwinTransformer'`` for one of ours and inherits the rest.
"""
from contextlib import nullcontext
from typing import Optional

import torch
from mmdet.models.backbones.swin import SwinTransformer
from mmengine.logging import print_log
from mmengine.model import BaseModule

from .weight_loading import CheckpointLayoutError, load_swin_weights


class PretrainedSwinTransformer(BaseModule):
    """mmdet's Swin with layout-detecting, all-or-nothing weight loading.

    Args:
        frozen (bool): freeze every Swin parameter (patch embed, blocks,
            PatchMerging, output norms) and run the trunk without autograd.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            as in mmdet's Swin configs; Microsoft and OpenMMLab layouts both
            load, and a weight left unfilled is an error.
        **swin_args: mmdet ``SwinTransformer`` arguments. ``convert_weights``
            is accepted and ignored: the layout is detected from the file.
    """

    def __init__(self, frozen: bool = False, init_cfg: Optional[dict] = None,
                 **swin_args):
        super().__init__(init_cfg=None)
        swin_args.pop('convert_weights', None)
        if swin_args.get('pretrained'):
            raise ValueError('use init_cfg=dict(type="Pretrained", '
                             'checkpoint=...) instead of `pretrained`')
        if init_cfg is not None and (init_cfg.get('type') != 'Pretrained'
                                     or 'checkpoint' not in init_cfg):
            raise ValueError(
                f'backbone init_cfg must be dict(type="Pretrained", '
                f'checkpoint=PATH) or None, got {init_cfg}')
        self.pretrained = init_cfg['checkpoint'] if init_cfg else None
        self.frozen = frozen
        self.swin_loaded_from_pretrained = False
        self.swin = SwinTransformer(**swin_args)
        self.out_indices = tuple(self.swin.out_indices)
        self.depths = tuple(len(s.blocks) for s in self.swin.stages)
        self.channels = tuple(self.swin.num_features)
        if frozen:
            self.swin.requires_grad_(False)

    @staticmethod
    def frozen_only(cls_name, kwargs):
        """For subclasses that always freeze: reject frozen=False."""
        if kwargs.pop('frozen', True) is not True:
            raise ValueError(f'{cls_name} always freezes the Swin; use '
                             f'PretrainedSwinTransformer(frozen=False) for '
                             f'full fine-tuning')
        return kwargs

    def init_weights(self):
        # Deliberately not BaseModule.init_weights: Swin's own init_weights
        # would re-randomise the trunk when it has no init_cfg.
        if self.pretrained:
            load_swin_weights(self.swin, self.pretrained)
            self.swin_loaded_from_pretrained = True
        else:
            print_log(
                f'{type(self).__name__}: no pretrained checkpoint '
                f'(init_cfg=None): the Swin keeps its random initialisation'
                + (' and stays frozen' if self.frozen else ''),
                logger='current', level=30)
        self._is_init = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # mmengine loads resume / test checkpoints with strict=False, which
        # would leave missing Swin weights random without a word
        missing = [prefix + 'swin.' + n for n, _ in self.swin.named_parameters()
                   if prefix + 'swin.' + n not in state_dict]
        if missing and not self.swin_loaded_from_pretrained:
            raise CheckpointLayoutError(
                f'the checkpoint lacks {len(missing)} Swin backbone weights '
                f'(e.g. {missing[0]}): it was probably saved with only the '
                f'trainable weights. Evaluating it would use a random '
                f'backbone. Load the frozen Swin from the pretrained file '
                f'first: tools/test.py CONFIG CKPT --backbone-from-pretrained '
                f'[SWIN_CKPT] (default: model.backbone.init_cfg.checkpoint), '
                f'or use a full checkpoint.')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- pieces of Swin's forward, shared by every variant -----------------
    def embed(self, x):
        x, hw_shape = self.swin.patch_embed(x)
        if self.swin.use_abs_pos_embed:
            x = x + self.swin.absolute_pos_embed
        return self.swin.drop_after_pos(x), hw_shape

    def stage_output(self, stage: int, x, hw_shape):
        out = getattr(self.swin, f'norm{stage}')(x)
        return out.view(-1, *hw_shape, self.channels[stage]).permute(
            0, 3, 1, 2).contiguous()

    def trunk_context(self):
        """Frozen trunk code runs without building an autograd graph."""
        return torch.no_grad() if self.frozen else nullcontext()

    def forward(self, x):
        with self.trunk_context():
            x, hw_shape = self.embed(x)
            outs = []
            for s, stage in enumerate(self.swin.stages):
                for block in stage.blocks:
                    x = block(x, hw_shape)
                if s in self.out_indices:
                    outs.append(self.stage_output(s, x, hw_shape))
                if stage.downsample is not None:
                    x, hw_shape = stage.downsample(x, hw_shape)
        return tuple(outs)
