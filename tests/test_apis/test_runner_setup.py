"""Runner setup: options checked up front, AMP, the distributed timeout."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dtl_mm.apis.runner_setup import check_amp, load_config
from dtl_mm.checks.model_check import check_pretrained_trunk
from helpers.tool_utils import DEMO, ROOT

VOC = 'configs/voc/retinanet_swin-b_dtlv2-ls_fpn_voc0712.py'


def test_random_swin_needs_the_named_option():
    for init in (None, dict(type='Pretrained', checkpoint='')):
        cfg = load_config(osp.join(ROOT, VOC))
        cfg.model.backbone.init_cfg = init
        with pytest.raises(
                ValueError,
                match=r'model.backbone.init_cfg=.*random frozen Swin.*'
                r'allow_random_trunk=True'):
            check_pretrained_trunk(cfg)
        cfg.allow_random_trunk = True
        check_pretrained_trunk(cfg)
    for task in DEMO:  # no pretrained tiny Swin exists: they opt in
        check_pretrained_trunk(load_config(osp.join(ROOT, DEMO[task])))
    shipped = load_config(osp.join(ROOT, VOC))  # a release URL: fine
    check_pretrained_trunk(shipped)


def test_amp_without_a_gpu_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = load_config(osp.join(ROOT, DEMO['voc']))
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    with pytest.raises(SystemExit, match='needs a CUDA GPU'):
        check_amp(cfg)


def test_distributed_timeout_is_configurable(monkeypatch):
    from dtl_mm.apis.runner_setup import dist_timeout
    monkeypatch.delenv('DTL_MM_DIST_TIMEOUT', raising=False)
    assert dist_timeout(Config()) == 1800
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(timeout=600))))
    assert dist_timeout(cfg) == 600
    monkeypatch.setenv('DTL_MM_DIST_TIMEOUT', '120')
    assert dist_timeout(cfg) == 120
    monkeypatch.setenv('DTL_MM_DIST_TIMEOUT', 'soon')
    with pytest.raises(ValueError, match='DTL_MM_DIST_TIMEOUT'):
        dist_timeout(cfg)
    guide = open(osp.join(ROOT, 'docs', 'training.md')).read()
    assert 'DTL_MM_DIST_TIMEOUT' in guide
