"""ConvNeXt (mmpretrain's, as mmdet's and mmseg's ConvNeXt configs build it)
as a frozen trunk: the trunk interface, its weight-key schema, and DTL on it.

It takes mmpretrain ``ConvNeXt``'s arguments unchanged (``arch``,
``out_indices``, ``drop_path_rate``, ``layer_scale_init_value``,
``gap_before_final_norm=False`` ...), so a config of mmdet's / mmseg's
ConvNeXt recipes swaps ``type='mmpretrain.ConvNeXt'`` for one of ours and
inherits the rest.

The side network sees ConvNeXt as it sees Swin: four stages of blocks (3, 3,
27, 3 for ConvNeXt-B) at 1/4 .. 1/32 scale, widths doubling, the
downsampling layer between two stages (LayerNorm + 2x2 convolution,
stride 2, ``downsample_layers[s + 1]``). Its blocks work on maps (B, C, H,
W); between blocks the walker keeps tokens (B, H*W, C), so each block runs
on the map view of its input (no copy) and returns tokens. The stage
outputs are ``norm{s}`` (LayerNorm over channels) of the stage's last
block, as in mmpretrain's forward.

mmpretrain is imported when the first such backbone is built.
"""
import re

from mmengine.registry import MODELS

from ..checkpoint.trunk_weights import (OUTPUT_NORM, OUTPUT_NORM_NOTE,
                                        TrunkKeySchema, block_range)
from .dtl_backbone import DTLBackbone
from .dtl_wrapper import adapts
from .recompute import recompute
from .side_network import to_map, to_tokens
from .trunk_wrapper import PretrainedTrunk, library_backbone


# -- the weight-key schema ----------------------------------------------
class ConvNeXtKeys(TrunkKeySchema):
    """mmpretrain's classification checkpoints hold ``backbone.<key>`` (and
    the head), mmdet / mmseg / dtl_mm model checkpoints
    ``[backbone.][convnext.]<key>``; the output norms a classification
    checkpoint lacks (all but the last stage's) keep their LayerNorm
    initialisation."""
    name = 'ConvNeXt'
    key = re.compile(r'^((?:module\.)?(?:backbone\.)?(?:convnext\.)?)'
                     r'((?:downsample_layers|stages)\.\d+\..*|'
                     r'norm\d+\..*)$')
    expected = ("'[backbone.][convnext.]stages.<stage>.<block>.*' "
                '(mmpretrain, mmdet, mmseg, dtl_mm)')
    shape_hint = 'another ConvNeXt size?'
    may_default = OUTPUT_NORM
    default_note = OUTPUT_NORM_NOTE
    block = re.compile(r'^stages\.(\d+)\.(\d+)\.')

    def is_block(self, key):
        return key.startswith('stages.')

    def to_model_keys(self, trunk, prefix, sd, filename):
        return sd, ('dtl_mm'
                    if prefix.endswith('convnext.') else 'mmpretrain'), 0

    def name_blocks(self, stage, first, last):
        return f'stage {stage} {block_range(first, last)}'

    def no_place(self, key):
        if key.endswith('.gamma'):
            return 'layer scale (set layer_scale_init_value)'
        return super().no_place(key)


CONVNEXT_KEYS = ConvNeXtKeys()


# -- the trunk -----------------------------------------------------------
def _block_on_tokens(block, x, hw_shape):
    return to_tokens(block(to_map(x, hw_shape)))


def _downsample_tokens(layer, x, hw_shape):
    out = layer(to_map(x, hw_shape))
    return to_tokens(out), tuple(out.shape[-2:])


@MODELS.register_module()
class PretrainedConvNeXt(PretrainedTrunk):
    """mmpretrain's ConvNeXt with all-or-nothing weight loading, optionally
    frozen (``frozen=True``: the ``fixed`` baseline).

    Args:
        frozen, lean_checkpoint, init_cfg: see :class:`PretrainedTrunk`;
            ``init_cfg`` takes an mmpretrain classification checkpoint (its
            ``backbone.*`` keys), or a whole mmdet / mmseg / dtl_mm model
            checkpoint.
        with_cp (bool | str): activation checkpointing of the blocks,
            downsampling layers and output norms autograd goes through
            (non-reentrant, unlike mmpretrain's option of the same name).
        **convnext_args: mmpretrain ``ConvNeXt`` arguments
            (``gap_before_final_norm`` must be False: dense outputs).
    """

    TRUNK = 'convnext'
    TRUNK_NAME = 'ConvNeXt'
    FAMILY = 'ConvNeXt'
    OWN_KEYS = OUTPUT_NORM
    KEYS = CONVNEXT_KEYS

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.depths = tuple(len(stage) for stage in self.convnext.stages)
        self.channels = tuple(self.convnext.channels)
        self.out_blocks = self.stage_outputs(self.convnext.out_indices)

    def build_trunk(self, gap_before_final_norm=False, **convnext_args):
        if gap_before_final_norm:
            raise ValueError(
                f'{type(self).__name__}: gap_before_final_norm=True pools '
                f'the outputs to vectors; a dense-prediction backbone needs '
                f'the maps (False, as mmdet\'s and mmseg\'s configs set)')
        if convnext_args.get('frozen_stages', 0) not in (0, -1):
            raise ValueError(
                f'{type(self).__name__}: use frozen=True (the whole trunk) '
                f'instead of frozen_stages')
        # the blocks are checkpointed here (run_block), not by mmpretrain's
        # reentrant with_cp
        convnext_args['with_cp'] = False
        return library_backbone('mmpretrain.models.backbones', 'ConvNeXt',
                                'ConvNeXt')(
                                    gap_before_final_norm=False,
                                    **convnext_args)

    # -- the trunk interface (PretrainedTrunk) ------------------------------
    def embed(self, x):
        """The stem (4x4 convolution, stride 4, and LayerNorm)."""
        x = self.convnext.downsample_layers[0](x)
        return to_tokens(x), tuple(x.shape[-2:])

    def run_block(self, block: int, x, hw_shape):
        stage, index = self.locate(block)
        return recompute(self.cp_policy, _block_on_tokens,
                         self.convnext.stages[stage][index], x, hw_shape)

    def downsample(self, stage: int, x, hw_shape):
        return recompute(self.cp_policy, _downsample_tokens,
                         self.convnext.downsample_layers[stage + 1], x,
                         hw_shape)

    def block_output(self, block: int, x, hw_shape):
        stage = self.stage_ends.index(block)
        return recompute(self.cp_policy, self._stage_output, stage, x,
                         hw_shape)

    def _stage_output(self, stage: int, x, hw_shape):
        norm = getattr(self.convnext, f'norm{stage}')
        return norm(to_map(x, hw_shape)).contiguous()

    def architecture(self) -> dict:
        blocks = [b for stage in self.convnext.stages for b in stage]
        stem = self.convnext.downsample_layers[0][0]
        return dict(
            depths=tuple(self.depths),
            channels=tuple(self.channels),
            stem=(tuple(stem.kernel_size), tuple(stem.stride)),
            kernel=tuple(b.depthwise_conv.kernel_size for b in blocks),
            linear_pw_conv=tuple(b.linear_pw_conv for b in blocks),
            grn=tuple(b.grn is not None for b in blocks),
            layer_scale=tuple(b.gamma is not None for b in blocks))

    def share_trunk_of(self, other):
        self.convnext.downsample_layers = other.convnext.downsample_layers
        self.convnext.stages = other.convnext.stages


@adapts('mmpretrain', 'ConvNeXt')
@MODELS.register_module()
class DTLConvNeXt(DTLBackbone, PretrainedConvNeXt):
    """DTL (DTLv1 / DTLv2 / DTLv2-LS) on a frozen mmpretrain ConvNeXt:
    :class:`~dtl_mm.models.dtl_backbone.DTLBackbone` on
    :class:`PretrainedConvNeXt`. M defaults to the middle block (19 of 36
    for ConvNeXt-S/B/L, 10 of 18 for ConvNeXt-T); bridges carry the side
    state across the downsampling layers ('frozen_patch_merging' has no
    ConvNeXt counterpart and is refused)."""
