"""A pretrained mmdet Swin, optionally frozen: the base every Swin variant
uses, and where Swin weights sit in files.

It takes the arguments of mmdet's ``SwinTransformer`` unchanged, so a config
swaps ``type='SwinTransformer'`` for one of ours and inherits the rest. What
it shares with the ViT backbones (freezing in ``__init__``, pretrained
loading, lean checkpoints) is :class:`PretrainedTrunk`.
"""
import re

from mmdet.models.backbones.swin import SwinTransformer, swin_converter
from mmengine.registry import MODELS

from ..checkpoint.trunk_weights import (OUTPUT_NORM, OUTPUT_NORM_NOTE,
                                        TrunkKeySchema, block_range)
from .recompute import recompute
from .trunk_wrapper import PretrainedTrunk


class SwinKeys(TrunkKeySchema):
    """A Swin under any of the prefixes ``[module.][backbone.][swin.]``: an
    ImageNet classifier (Microsoft's release, ``model`` -> ``layers.*``,
    converted once with mmdet's ``swin_converter``; or OpenMMLab's
    converted ``[backbone.]stages.*``, loaded as they are, since the
    converter would silently mangle them), an mmdet / mmseg detector or
    segmentor, a whole dtl_mm model (``backbone.swin.*``), a DDP-saved
    model (``module.``)."""
    name = 'Swin'
    key = re.compile(r'^((?:module\.)?(?:backbone\.)?(?:swin\.)?)'
                     r'((?:stages|layers)\.\d+\..*|patch_embed\..*|'
                     r'absolute_pos_embed|norm\d+\..*)$')
    expected = ("'[module.][backbone.][swin.]stages.*' (OpenMMLab, dtl_mm) "
                "or 'layers.*' (Microsoft release)")
    shape_hint = 'another Swin size or window size?'
    may_default = OUTPUT_NORM
    default_note = OUTPUT_NORM_NOTE
    block = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.')
    # the release's shifted blocks keep their attention masks (mmdet's
    # compute theirs)
    not_in_model = re.compile(r'\.attn_mask$')

    def is_block(self, key):
        return key.startswith(('stages.', 'layers.'))

    def to_model_keys(self, trunk, prefix, sd, filename):
        if any(k.startswith('layers.') for k in sd):
            converted = swin_converter(sd)  # adds 'backbone.'
            return {k[len('backbone.'):]: v
                    for k, v in converted.items()}, 'microsoft', 0
        return sd, 'dtl_mm' if prefix.endswith('swin.') else 'openmmlab', 0

    def name_blocks(self, stage, first, last):
        return f'stages.{stage}.blocks.{block_range(first, last)}'


SWIN_KEYS = SwinKeys()


@MODELS.register_module()
class PretrainedSwinTransformer(PretrainedTrunk):
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

    TRUNK = 'swin'
    TRUNK_NAME = 'Swin'
    FAMILY = 'Swin'
    KEYS = SWIN_KEYS
    # the output norms (norm0..3) exist only for a model's out_indices and
    # act on stage outputs, which every task normalises itself
    OWN_KEYS = OUTPUT_NORM

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.depths = tuple(len(s.blocks) for s in self.swin.stages)
        self.channels = tuple(self.swin.num_features)
        # a stage's output is its last block's (normed by norm{stage})
        self.out_blocks = self.stage_outputs(self.swin.out_indices)
        self.out_indices = tuple(self.swin.out_indices)

    def build_trunk(self, convert_weights=None, **swin_args):
        # convert_weights: the layout is detected from the file instead.
        # The blocks are checkpointed here (run_block), not by mmdet's
        # reentrant with_cp.
        return SwinTransformer(with_cp=False, **swin_args)

    # -- the trunk interface (PretrainedTrunk) ------------------------------
    def embed(self, x):
        x, hw_shape = self.swin.patch_embed(x)
        if self.swin.use_abs_pos_embed:
            x = x + self.swin.absolute_pos_embed
        return self.swin.drop_after_pos(x), hw_shape

    def run_block(self, block: int, x, hw_shape):
        stage, index = self.locate(block)
        return recompute(self.cp_policy, self.swin.stages[stage].blocks[index],
                         x, hw_shape)

    def downsample(self, stage: int, x, hw_shape):
        return recompute(self.cp_policy, self.swin.stages[stage].downsample, x,
                         hw_shape)

    def block_output(self, block: int, x, hw_shape):
        """The output of the stage ``block`` ends: its norm of ``x``."""
        return recompute(self.cp_policy, self._stage_output,
                         self.stage_ends.index(block), x, hw_shape)

    def _stage_output(self, stage: int, x, hw_shape):
        out = getattr(self.swin, f'norm{stage}')(x)
        return out.view(-1, *hw_shape,
                        self.channels[stage]).permute(0, 3, 1, 2).contiguous()

    def frozen_merges(self) -> tuple:
        return tuple(stage.downsample for stage in self.swin.stages)

    def architecture(self) -> dict:
        swin = self.swin
        proj = swin.patch_embed.projection
        attns = [blk.attn for st in swin.stages for blk in st.blocks]
        return dict(
            depths=tuple(self.depths),
            channels=tuple(self.channels),
            patch=(tuple(proj.kernel_size), tuple(proj.stride)),
            num_heads=tuple(a.w_msa.num_heads for a in attns),
            window_size=tuple(a.window_size for a in attns),
            shift_size=tuple(a.shift_size for a in attns),
            qk_scale=tuple(a.w_msa.scale for a in attns),
            abs_pos_embed=bool(swin.use_abs_pos_embed),
            patch_norm=swin.patch_embed.norm is not None)

    def share_trunk_of(self, other):
        swin, shared = self.swin, other.swin
        swin.patch_embed = shared.patch_embed
        swin.stages = shared.stages
        if swin.use_abs_pos_embed:
            swin.absolute_pos_embed = shared.absolute_pos_embed
