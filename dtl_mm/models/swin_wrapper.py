"""A pretrained mmdet Swin, optionally frozen: the base every variant uses.

Like mmpretrain's ``LoRAModel``, the wrapper builds the wrapped backbone and
freezes it in ``__init__``; mmengine wraps the model for DDP before
``init_weights``/``train()`` run, so freezing any later would change the set
of parameters DDP expects.

It takes the arguments of mmdet's ``SwinTransformer`` unchanged, so a config
swaps ``type='SwinTransformer'`` for one of ours and inherits the rest.
"""
from contextlib import nullcontext
from typing import Optional, Union

import torch
from mmdet.models.backbones.swin import SwinTransformer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from .recompute import check_cp_policy, recompute
from .weight_loading import (EXTRA_STATE, CheckpointLayoutError,
                             decode_trunk_record, encode_trunk_record,
                             lean_trunk_missing, load_swin_weights,
                             pretrained_file_exists)


@MODELS.register_module()
class PretrainedSwinTransformer(BaseModule):
    """mmdet's Swin with layout-detecting, all-or-nothing weight loading.

    Args:
        frozen (bool): freeze every Swin parameter (patch embed, blocks,
            PatchMerging, output norms) and run the trunk without autograd.
        lean_checkpoint (bool): for a frozen Swin that came from a file,
            leave its weights out of saved state dicts (checkpoints) and
            record the file and a sha256 fingerprint instead; loading such
            a checkpoint takes the trunk from that file again (the config's
            ``init_cfg.checkpoint``) and checks the fingerprint. A trunk
            that did not come from a file is always saved in full.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            as in mmdet's Swin configs (a path, ``~`` path or http(s) URL);
            Microsoft and OpenMMLab layouts and whole dtl_mm / mmdet / mmseg
            model checkpoints all load, and a weight left unfilled is an
            error.
        with_cp (bool | str): activation checkpointing of what autograd goes
            through (blocks, stage output norms, PatchMerging, a side
            network): True recomputes each in backward, 'selective' keeps
            the outputs of the wide matrix products and recomputes the rest
            (``recompute.py``). Non-reentrant, unlike mmdet's Swin option of
            the same name, so it also works where the input of a region
            does not require grad.
        **swin_args: mmdet ``SwinTransformer`` arguments. ``convert_weights``
            is accepted and ignored: the layout is detected from the file.
    """

    def __init__(self,
                 frozen: bool = False,
                 lean_checkpoint: bool = True,
                 init_cfg: Optional[dict] = None,
                 with_cp: Union[bool, str] = False,
                 **swin_args):
        super().__init__(init_cfg=None)
        self.with_cp = check_cp_policy(with_cp)
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
        self.lean_checkpoint = lean_checkpoint
        # {'source': file, 'sha256': fingerprint} once the trunk holds the
        # weights of a file; None while it is random
        self.trunk_record: Optional[dict] = None
        # the blocks are checkpointed here (run_block), not by mmdet's
        # reentrant with_cp
        self.swin = SwinTransformer(with_cp=False, **swin_args)
        # the Swin's own state, before any variant adds modules to it
        self.trunk_keys = tuple(self.swin.state_dict())
        self.out_indices = tuple(self.swin.out_indices)
        self.depths = tuple(len(s.blocks) for s in self.swin.stages)
        self.channels = tuple(self.swin.num_features)
        if frozen:
            self.swin.requires_grad_(False)
        self._register_state_dict_hook(self._leave_out_frozen_trunk)

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
            self.load_pretrained()
        else:
            print_log(
                f'{type(self).__name__}: no pretrained checkpoint '
                f'(init_cfg=None): the Swin keeps its random initialisation' +
                (' and stays frozen' if self.frozen else ''),
                logger='current',
                level=30)
        self._is_init = True

    def load_pretrained(self, filename: Optional[str] = None):
        """Fills the trunk from ``filename`` (default: ``init_cfg``)."""
        filename = filename or self.pretrained
        report = load_swin_weights(self.swin, filename, keys=self.trunk_keys)
        self.trunk_record = dict(source=filename, sha256=report['sha256'])

    def trunk_state(self):
        state = self.swin.state_dict()
        return {k: state[k] for k in self.trunk_keys}

    # -- what a checkpoint holds --------------------------------------------
    def get_extra_state(self):
        return encode_trunk_record(self.trunk_record if self.frozen else None)

    def set_extra_state(self, state):
        record = decode_trunk_record(state)
        # the same weights already loaded from a file (init_cfg, perhaps at
        # a new path after a move): keep naming that file, not the old one
        same = self.trunk_record and record and \
            self.trunk_record['sha256'] == record.get('sha256')
        if self.frozen and record and not same:
            self.trunk_record = record

    def _leave_out_frozen_trunk(self, module, destination, prefix,
                                local_metadata):
        if not (self.frozen and self.lean_checkpoint):
            return
        if self.trunk_record is None:
            if not getattr(self, '_warned_full', False):
                self._warned_full = True
                print_log(
                    f'{type(self).__name__}: the frozen Swin did not come '
                    f'from a file (init_cfg=None), so checkpoints hold it in '
                    f'full (lean checkpoints need a trunk that can be '
                    f'restored from its file)',
                    logger='current',
                    level=30)
            return
        for key in self.trunk_keys:
            destination.pop(prefix + 'swin.' + key, None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        trunk = [prefix + 'swin.' + k for k in self.trunk_keys]
        missing = [k for k in trunk if k not in state_dict]
        record = decode_trunk_record(state_dict.get(prefix + EXTRA_STATE))
        if missing and len(missing) < len(trunk):
            raise CheckpointLayoutError(
                f'the checkpoint holds only part of the Swin backbone: '
                f'{len(missing)} of {len(trunk)} tensors are missing, e.g. '
                f'{missing[:3]}')
        if missing and record:
            self._complete_lean(state_dict, prefix, record)
        elif missing and self.trunk_record is None:
            # mmengine loads test / resume checkpoints with strict=False,
            # which would leave the Swin random without a word
            raise CheckpointLayoutError(
                f'the checkpoint lacks all {len(missing)} Swin backbone '
                f'weights (e.g. {missing[0]}) and records no pretrained file '
                f'to take them from. Evaluating it would use a random '
                f'backbone. Load the frozen Swin from the pretrained file '
                f'first: tools/test.py CONFIG CKPT --backbone-from-pretrained '
                f'[SWIN_CKPT] (default: model.backbone.init_cfg.checkpoint), '
                f'or use a full checkpoint.')
        elif missing:  # trainable-only, onto a trunk loaded from a file
            self._fill_trunk(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _complete_lean(self, state_dict, prefix, record):
        """Puts the frozen trunk a lean checkpoint was trained on into its
        state dict, from the configured pretrained file."""
        want = record.get('sha256')
        if self.trunk_record is None or self.trunk_record['sha256'] != want:
            if not self.pretrained or not pretrained_file_exists(
                    self.pretrained):
                raise CheckpointLayoutError(
                    lean_trunk_missing(record, self.pretrained))
            self.load_pretrained()
        have = self.trunk_record['sha256']
        if have != want:
            raise CheckpointLayoutError(
                f'a lean checkpoint trained on the frozen Swin from '
                f'{record.get("source")} (sha256 {str(want)[:16]}...), but '
                f'the configured pretrained file {self.trunk_record["source"]}'
                f' holds different weights (sha256 {have[:16]}...). '
                f'Evaluating would use the wrong backbone; point '
                f'model.backbone.init_cfg.checkpoint at the file the '
                f'checkpoint was trained with.')
        self._fill_trunk(state_dict, prefix)

    def _fill_trunk(self, state_dict, prefix):
        """The trunk's current weights into a state dict that lacks them, so
        the Swin's modules load them like any other key."""
        state_dict.update(
            (prefix + 'swin.' + k, v) for k, v in self.trunk_state().items())

    # -- pieces of Swin's forward, shared by every variant -----------------
    @property
    def cp_policy(self) -> Union[bool, str]:
        """The checkpointing policy now: off unless training."""
        return self.with_cp if self.training else False

    def set_checkpointing(self, policy: Union[bool, str] = True) -> str:
        """Turns activation checkpointing on (keeping a policy already
        set); what ``activation_checkpointing = ['backbone', ...]`` does."""
        self.with_cp = self.with_cp or check_cp_policy(policy)
        return f'with_cp={self.with_cp!r}'

    def run_block(self, block, x, hw_shape):
        return recompute(self.cp_policy, block, x, hw_shape)

    def run_downsample(self, stage, x, hw_shape):
        return recompute(self.cp_policy, stage.downsample, x, hw_shape)

    def embed(self, x):
        x, hw_shape = self.swin.patch_embed(x)
        if self.swin.use_abs_pos_embed:
            x = x + self.swin.absolute_pos_embed
        return self.swin.drop_after_pos(x), hw_shape

    def stage_output(self, stage: int, x, hw_shape):
        """The output of ``stage`` (0-based) as a map: its norm of ``x``."""
        return recompute(self.cp_policy, self._stage_output, stage, x,
                         hw_shape)

    def _stage_output(self, stage: int, x, hw_shape):
        out = getattr(self.swin, f'norm{stage}')(x)
        return out.view(-1, *hw_shape,
                        self.channels[stage]).permute(0, 3, 1, 2).contiguous()

    def trunk_context(self):
        """Frozen trunk code runs without building an autograd graph."""
        return torch.no_grad() if self.frozen else nullcontext()

    def forward(self, x):
        with self.trunk_context():
            x, hw_shape = self.embed(x)
            outs = []
            for s, stage in enumerate(self.swin.stages):
                for block in stage.blocks:
                    x = self.run_block(block, x, hw_shape)
                if s in self.out_indices:
                    outs.append(self.stage_output(s, x, hw_shape))
                if stage.downsample is not None:
                    x, hw_shape = self.run_downsample(stage, x, hw_shape)
        return tuple(outs)
