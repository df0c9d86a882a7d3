"""The optimizer constructor: weight-decay exemptions."""
import os.path as osp

from mmengine.config import Config

from dtl_mm.apis.runner_setup import build_model
from dtl_mm.models.swin_presets import TINY_SWIN, TINY_SWIN_CHANNELS
from helpers.swin_utils import skip_random_init
from helpers.tool_utils import ROOT


def small_optimizer(variant):
    cfg = Config.fromfile(
        osp.join(
            ROOT, 'configs/coco/cascade-mask-rcnn_swin-b_'
            f'{variant}_fpn_3x_coco.py'))
    cfg.model.backbone.update(TINY_SWIN, init_cfg=None)
    cfg.model.neck.in_channels = TINY_SWIN_CHANNELS
    with skip_random_init():  # which parameters, not their values
        model = build_model(cfg)
    from mmengine.optim import build_optim_wrapper
    cfg.optim_wrapper.type = 'OptimWrapper'  # AMP needs a GPU
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {
        id(p): g['weight_decay']
        for g in wrapper.optimizer.param_groups for p in g['params']
    }
    return model, decay


def test_weight_decay_exemptions_do_not_catch_side_network():
    """The Swin recipe's custom_keys are substring matches; CSN parameters
    must keep the full weight decay, frozen ones stay out of the optimizer."""
    model, decay = small_optimizer('dtlv2-ls')
    csn = list(model.backbone.csn.named_parameters())
    assert csn
    for name, p in csn:
        assert decay[id(p)] == 0.05, name
    assert not any(id(p) in decay for p in model.backbone.swin.parameters())
    # the exemptions still reach the Swin when it trains (full variant)
    model, decay = small_optimizer('full')
    swin = dict(model.backbone.swin.named_parameters())
    for name in ('stages.0.blocks.0.norm1.weight',
                 'stages.0.blocks.0.attn.w_msa.relative_position_bias_table'):
        assert decay[id(swin[name])] == 0.0
    assert decay[id(swin['stages.0.blocks.0.attn.w_msa.qkv.weight'])] == 0.05
