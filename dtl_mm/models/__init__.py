"""DTL and PETL-baseline Swin backbones.

Each backbone registers itself in mmengine's root ``MODELS`` registry where
it is defined; mmdet's and mmseg's ``MODELS`` registries are its children and
find it from either scope, so detection never needs mmseg installed.
"""
from .csn_layout import CSNLayout, DTLOptions, build_layout
from .dtl_swin import DTLSwinTransformer
from .petl_baselines import (AdapterSwinTransformer,
                             AdaptFormerSwinTransformer, LoRASwinTransformer)
from .side_network import CompactSideNetwork
from .swin_wrapper import PretrainedSwinTransformer
from .weight_loading import (CheckpointLayoutError, load_swin_weights,
                             swin_fingerprint)

__all__ = [
    'PretrainedSwinTransformer', 'DTLSwinTransformer', 'CompactSideNetwork',
    'CSNLayout', 'DTLOptions', 'build_layout', 'load_swin_weights',
    'CheckpointLayoutError', 'swin_fingerprint', 'LoRASwinTransformer',
    'AdapterSwinTransformer', 'AdaptFormerSwinTransformer'
]
