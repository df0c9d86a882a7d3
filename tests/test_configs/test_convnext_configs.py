"""The ConvNeXt configs (configs/convnext/): ConvNeXt-B Cascade Mask R-CNN
on COCO and UperNet on ADE20K, full and DTLv2-LS, build with the parts
they promise; the toy version trains and tests through our tools and
mmseg's own. Marked `mmpretrain` (mmpretrain builds the ConvNeXt)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dtl_mm.apis.runner_setup import build_model, load_config
from dtl_mm.checks.model_check import check_pretrained_trunk
from dtl_mm.models import DTLConvNeXt, PretrainedConvNeXt
from dtl_mm.utils.param_count import count_parameters
from helpers.swin_utils import skip_random_init
from helpers.tool_utils import ROOT, toy_ade20k_train_then_test

pytestmark = pytest.mark.mmpretrain

FOLDER = osp.join(ROOT, 'configs', 'convnext')
CONFIGS = sorted(glob.glob(osp.join(FOLDER, '*_convnext-b_*.py')))
TOY = osp.join(FOLDER, 'upernet_convnext-toy_dtlv2-ls_toy-ade20k.py')
# ConvNeXt-B with its 4 output norms (the paper: 87.6 M)
CONVNEXT_B_PARAMS = 87_568_256


def test_full_and_dtl_for_both_tasks():
    names = {
        osp.basename(p).split('_')[0] + '/' + osp.basename(p).split('_')[2]
        for p in CONFIGS
    }
    assert names == {
        'cascade-mask-rcnn/full', 'cascade-mask-rcnn/dtlv2-ls', 'upernet/full',
        'upernet/dtlv2-ls'
    }


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_with_expected_trainable_parts(path):
    dtl = '_dtlv2-ls_' in path
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.init_cfg.checkpoint.endswith(
        'convnext-base_3rdparty_32xb128-noema_in1k_20220301-2a0ee547.pth')
    assert cfg.runner_type == 'DTLRunner'
    cfg.model.backbone.init_cfg = None
    with skip_random_init():  # counts and types, not values, are checked
        model = build_model(cfg)
    backbone = model.backbone
    assert type(backbone) is (DTLConvNeXt if dtl else PretrainedConvNeXt)
    assert backbone.depths == (3, 3, 27, 3)
    counts = count_parameters(model)
    trunk = counts['trunk']
    assert trunk['trainable'] + trunk['frozen'] == CONVNEXT_B_PARAMS
    assert trunk['trainable' if dtl else 'frozen'] == 0
    assert (counts['side network']['trainable'] > 0) == dtl
    if dtl:
        assert backbone.layout.first_g == 19
    with torch.no_grad():
        outs = backbone(torch.zeros(1, 3, 64, 64))
    head = cfg.model.get('neck') or cfg.model.decode_head
    assert [o.shape[1] for o in outs] == list(head.in_channels)


def test_random_convnext_needs_the_named_option():
    path = next(p for p in CONFIGS if '_dtlv2-ls_' in p)
    check_pretrained_trunk(load_config(path))  # the release URL: fine
    cfg = load_config(path)
    cfg.model.backbone.init_cfg = None
    with pytest.raises(
            ValueError,
            match=r'no pretrained ConvNeXt, so training would start from a '
            r'random frozen ConvNeXt.*allow_random_trunk=True'):
        check_pretrained_trunk(cfg)
    check_pretrained_trunk(load_config(TOY))  # the toy opts in


@pytest.mark.slow
def test_toy_ade20k_trains_and_tests_with_our_and_mmsegs_tools(toy_workspace):
    state = toy_ade20k_train_then_test(toy_workspace, TOY, 'convnext')
    # a random trunk (no pretrained file) is saved in full, beside the side
    # network that trained
    assert any(k.startswith('backbone.convnext.stages.') for k in state)
    assert any(k.startswith('backbone.csn.') for k in state)
