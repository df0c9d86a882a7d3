"""DTL and PETL-baseline backbones on mmdet's Swin; DTL on mmseg's and
mmpretrain's plain ViTs (LoRA on mmpretrain's) and on mmpretrain's ConvNeXt.

Each backbone registers itself in mmengine's root ``MODELS`` registry where
it is defined; mmdet's and mmseg's ``MODELS`` registries are its children and
find it from either scope, so Swin detection never needs mmseg installed
(the ViT backbones import it when built). So do the checkpointed RoI heads
(``roi_heads``), mmdet's own with their training forward checkpointed.
"""
from ..checkpoint.errors import CheckpointLayoutError
from ..checkpoint.lean_checkpoint import trunk_fingerprint
from .convnext import DTLConvNeXt, PretrainedConvNeXt
from .csn_layout import CSNLayout, DTLOptions, build_layout
from .dtl_swin import DTLSwinTransformer
from .dtl_vit import DTLVisionTransformer
from .dtl_wrapper import TRUNK_ADAPTERS, build_dtl_backbone
from .mmpretrain_vit import DTLMMPretrainViT, PretrainedMMPretrainViT
from .petl_baselines import (AdapterSwinTransformer,
                             AdaptFormerSwinTransformer, LoRASwinTransformer)
from .petl_vit import LoRAMMPretrainViT
from .roi_heads import CheckpointedCascadeRoIHead, CheckpointedStandardRoIHead
from .side_network import CompactSideNetwork
from .swin_wrapper import PretrainedSwinTransformer
from .trunk_wrapper import PretrainedTrunk
from .vit_wrapper import PretrainedVisionTransformer

__all__ = [
    'PretrainedConvNeXt', 'DTLConvNeXt', 'build_dtl_backbone',
    'TRUNK_ADAPTERS', 'PretrainedTrunk', 'PretrainedSwinTransformer',
    'DTLSwinTransformer', 'PretrainedVisionTransformer',
    'DTLVisionTransformer', 'CompactSideNetwork', 'CSNLayout', 'DTLOptions',
    'build_layout', 'CheckpointLayoutError', 'trunk_fingerprint',
    'LoRASwinTransformer', 'AdapterSwinTransformer',
    'AdaptFormerSwinTransformer', 'PretrainedMMPretrainViT',
    'DTLMMPretrainViT', 'LoRAMMPretrainViT', 'CheckpointedCascadeRoIHead',
    'CheckpointedStandardRoIHead'
]
