"""The model config check: bad options and mismatched heads are named."""
import os.path as osp

import pytest
from mmengine.config import Config

from dtl_mm.checks.model_check import check_model_config
from helpers.tool_utils import DEMO, ROOT


def demo(task='voc', **backbone):
    cfg = Config.fromfile(osp.join(ROOT, DEMO[task]))
    cfg.model.backbone.update(backbone)
    return cfg


@pytest.mark.parametrize('backbone, message', [
    (dict(frozen_stages=9), r'model.backbone.frozen_stages=9: must be a '
     r'whole number in -1..4 .*freeze the whole Swin anyway'),
    (dict(first_g_block=0), r'model.backbone.first_g_block=0: must be a '
     r'whole block number in 1..12'),
    (dict(first_g_block=7.0), r'model.backbone.first_g_block=7.0: must be a '
     r'whole block number in 1..12'),
    (dict(first_g_block=10, g_blocks=[8, 12]),
     r'first_g_block=10 and g_blocks=\[8, 12\] conflict: .* at 8'),
])
def test_block_options_are_checked_by_name(backbone, message):
    with pytest.raises(ValueError, match=message):
        check_model_config(demo(**backbone))


# ------------------------------------------------------------- bad configs
def test_out_indices_must_match_neck(tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, DEMO['voc']))
    check_model_config(cfg)
    cfg.model.backbone.out_indices = (0, 1, 2)
    with pytest.raises(ValueError, match='neck.in_channels'):
        check_model_config(cfg)
    cfg = Config.fromfile(osp.join(ROOT, DEMO['ade20k']))
    cfg.model.decode_head.in_channels = [32, 64, 128]
    with pytest.raises(ValueError, match='decode_head.in_channels'):
        check_model_config(cfg)


def test_mmengine_checkpointing_key_is_refused_and_ours_named():
    """mmengine applies activation_checkpointing with the reentrant
    checkpoint: the parts behind the frozen trunk would train nothing."""
    cfg = demo()
    cfg.activation_checkpointing = ['neck']
    with pytest.raises(
            ValueError,
            match=r"activation_checkpointing=\['neck'\].*reentrant.*"
            r"checkpointed_parts=\['neck'\]"):
        check_model_config(cfg)
    cfg.activation_checkpointing = None
    cfg.checkpointed_parts = ['neck']
    check_model_config(cfg)


def test_roi_head_is_checkpointed_by_its_type():
    cfg = Config.fromfile(osp.join(ROOT, DEMO['coco']))
    cfg.checkpointed_parts = ['neck', 'roi_head']
    with pytest.raises(
            ValueError,
            match=r"model.roi_head.type='CheckpointedCascadeRoIHead'"):
        check_model_config(cfg)
    cfg.model.roi_head.type = 'CheckpointedCascadeRoIHead'
    check_model_config(cfg)  # listed as well: harmless


def test_trunk_of_a_dtl_backbone_is_not_a_checkpointing_part():
    """``backbone.swin``'s forward is never called (the backbone runs its
    blocks): naming it is an error that says what to name instead."""
    from mmengine.registry import MODELS, init_default_scope

    from dtl_mm.models.recompute import enable_activation_checkpointing
    cfg = demo()
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    with pytest.raises(
            ValueError,
            match=r"'backbone.swin' is the trunk inside "
            r"'backbone'.*list 'backbone' instead"):
        enable_activation_checkpointing(model, ['backbone.swin'])
    assert enable_activation_checkpointing(model, ['backbone'])


def test_num_classes_against_the_dataset_class_default():
    """A config that lists no classes uses its dataset class's own (ADE20K:
    150); a head of another count is named before any label is read."""
    cfg = Config.fromfile(
        osp.join(
            ROOT, 'configs/ade20k/'
            'upernet_swin-l_dtlv2-ls_160k_ade20k-512x512.py'))
    check_model_config(cfg)
    cfg.model.decode_head.num_classes = 7
    with pytest.raises(
            ValueError,
            match=r'model.decode_head.num_classes=7: the data set has 150 '
            r"classes \('wall', 'building', 'sky', ...\) "
            r'\(ADE20KDataset.METAINFO\)'):
        check_model_config(cfg)
