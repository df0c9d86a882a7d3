"""type='DTL': a library backbone config wrapped, built as the registered
DTL backbone for that trunk."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from dtl_mm.models import (DTLMMPretrainViT, DTLSwinTransformer,
                           DTLVisionTransformer)
from dtl_mm.models import mmpretrain_vit_presets as pretrain_presets
from dtl_mm.models import vit_presets
from dtl_mm.models.swin_presets import TINY_SWIN
from helpers.tool_utils import DEMO, ROOT


def shape(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize('scope,trunk,named', [
    ('mmdet', dict(type='mmdet.SwinTransformer', **
                   TINY_SWIN), DTLSwinTransformer),
    ('mmdet', dict(type='SwinTransformer', **TINY_SWIN), DTLSwinTransformer),
    ('mmseg', dict(type='VisionTransformer', **
                   vit_presets.TINY_VIT), DTLVisionTransformer),
    pytest.param(
        'mmseg',
        dict(type='mmpretrain.VisionTransformer', **pretrain_presets.TINY_VIT),
        DTLMMPretrainViT,
        marks=pytest.mark.mmpretrain),
])
def test_wrapped_trunk_is_the_named_dtl_backbone(scope, trunk, named):
    init_default_scope(scope)
    torch.manual_seed(0)
    wrapped = MODELS.build(
        dict(type='DTL', trunk=trunk, variant='dtlv2', rank=8))
    args = {k: v for k, v in trunk.items() if k != 'type'}
    torch.manual_seed(0)
    direct = named(variant='dtlv2', rank=8, **args)
    assert type(wrapped) is named
    # the same parameters and the same checkpoints
    assert shape(wrapped) == shape(direct)
    for k, v in direct.state_dict().items():
        assert torch.equal(wrapped.state_dict()[k], v), k


def test_a_shipped_config_with_its_backbone_wrapped():
    """The COCO demo config's Swin wrapped instead of named: the same
    model."""
    cfg = Config.fromfile(osp.join(ROOT, DEMO['coco']))
    backbone = dict(cfg.model.backbone)
    dtl = {
        k: backbone.pop(k)
        for k in ('variant', 'rank', 'with_cp') if k in backbone
    }
    backbone['type'] = 'mmdet.SwinTransformer'
    init_default_scope('mmdet')
    torch.manual_seed(0)
    named = MODELS.build(cfg.model.backbone)
    torch.manual_seed(0)
    wrapped = MODELS.build(dict(type='DTL', trunk=backbone, **dtl))
    assert shape(wrapped) == shape(named)


@pytest.mark.parametrize('trunk,match', [
    (dict(type='mmdet.ResNet'), "'mmdet.ResNet' has no DTL adapter; the "
     r'trunks with one are mmdet.SwinTransformer, mmpretrain.ConvNeXt, '
     r'mmpretrain.VisionTransformer, mmseg.VisionTransformer'),
    ('SwinTransformer', 'trunk must be a backbone config dict'),
])
def test_a_trunk_without_an_adapter_names_those_with_one(trunk, match):
    init_default_scope('mmdet')
    with pytest.raises((ValueError, TypeError), match=match):
        MODELS.build(dict(type='DTL', trunk=trunk))


def test_an_option_in_both_places_is_refused():
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match=r"\['with_cp'\] given both"):
        MODELS.build(
            dict(
                type='DTL',
                trunk=dict(type='SwinTransformer', with_cp=True, **TINY_SWIN),
                with_cp=False))
