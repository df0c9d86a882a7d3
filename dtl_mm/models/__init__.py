"""DTL models, registered in both mmdet's and mmseg's MODELS registries."""
from mmdet.registry import MODELS as MMDET_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS

from .csn_layout import CSNLayout, DTLOptions, build_layout
from .dtl_swin import DTLSwinTransformer
from .petl_baselines import (AdapterSwinTransformer,
                             AdaptFormerSwinTransformer, LoRASwinTransformer)
from .side_network import CompactSideNetwork
from .swin_wrapper import PretrainedSwinTransformer
from .weight_loading import (CheckpointLayoutError, load_swin_weights,
                             swin_fingerprint)

for _registry in (MMDET_MODELS, MMSEG_MODELS):
    for _cls in (PretrainedSwinTransformer, DTLSwinTransformer,
                 LoRASwinTransformer, AdapterSwinTransformer,
                 AdaptFormerSwinTransformer):
        _registry.register_module(module=_cls)

__all__ = [
    'PretrainedSwinTransformer', 'DTLSwinTransformer', 'CompactSideNetwork',
    'CSNLayout', 'DTLOptions', 'build_layout', 'load_swin_weights',
    'CheckpointLayoutError', 'swin_fingerprint',
    'LoRASwinTransformer', 'AdapterSwinTransformer',
    'AdaptFormerSwinTransformer'
]
