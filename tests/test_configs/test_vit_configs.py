"""The shipped ViT configs build with the parts they promise; the toy ViT
demos train and test through our tools and mmdet's / mmseg's own."""
import copy
import glob
import os.path as osp

import mmdet
import mmseg
import pytest
import torch
from mmengine.config import Config

from dtl_mm.apis.runner_setup import build_model, load_config
from dtl_mm.checks.model_check import check_pretrained_trunk
from dtl_mm.models import DTLVisionTransformer, PretrainedVisionTransformer
from dtl_mm.utils.param_count import count_parameters
from helpers.config_utils import VIT_DEMO
from helpers.swin_utils import skip_random_init
from helpers.tool_utils import METRIC_KEYS, ROOT, metrics_in, run_tool, tool

VIT_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'vit', '*.py')))

SHORT = {
    'coco': ['train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1'],
    'ade20k': [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2'
    ],
}

FINAL = {'coco': 'epoch_1.pth', 'ade20k': 'iter_2.pth'}


def variant_of(path):
    return next(
        v for v in ('full', 'fixed', 'dtlv2-ls')
        if f'_{v}_' in osp.basename(path))


def test_every_variant_for_both_tasks():
    names = {(variant_of(p), 'coco' if 'coco' in p else 'ade20k')
             for p in VIT_CONFIGS}
    assert names == {('full', 'ade20k'), ('fixed', 'ade20k'),
                     ('dtlv2-ls', 'ade20k'), ('full', 'coco'),
                     ('dtlv2-ls', 'coco')}


@pytest.mark.parametrize(
    'path', VIT_CONFIGS, ids=[osp.basename(p) for p in VIT_CONFIGS])
def test_vit_config_builds_with_expected_trainable_parts(path):
    variant = variant_of(path)
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.init_cfg.checkpoint.endswith(
        'deit_base_patch16_224-b5f2ef4d.pth')
    cfg.model.backbone.init_cfg = None
    with skip_random_init():  # counts and types, not values, are checked
        model = build_model(cfg)
    backbone = model.backbone
    assert type(backbone) is (DTLVisionTransformer if variant == 'dtlv2-ls'
                              else PretrainedVisionTransformer)
    assert backbone.channels == (768, ) and backbone.num_blocks == 12
    counts = count_parameters(model)
    trunk = counts['trunk']  # the trunk's row, Swin or ViT
    assert trunk['trainable' if variant == 'full' else 'frozen'] > 85e6
    assert trunk['frozen' if variant == 'full' else 'trainable'] == 0
    side = counts['side network']['trainable']
    assert (side > 0) == (variant == 'dtlv2-ls')
    if variant == 'dtlv2-ls':
        assert backbone.layout.first_g == 7
        assert side == sum(p.numel() for p in backbone.csn.parameters())
        # the recipe's weight-decay exemptions reach no CSN parameter
        exempt = cfg.optim_wrapper.paramwise_cfg.custom_keys
        assert 'pos_embed' in exempt
        assert not [
            n for n, _ in model.named_parameters()
            if '.csn.' in n and any(k in n for k in exempt)
        ]
    # the neck's inputs are the backbone's outputs
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        outs = backbone(x)
    assert [o.shape[1] for o in outs] == list(cfg.model.neck.in_channels)


@pytest.mark.parametrize('path', VIT_CONFIGS, ids=osp.basename)
def test_random_vit_needs_the_named_option(path):
    """A shipped ViT config without its pretrained file is refused like a
    Swin one; the ViT demos inherit the Swin demos' opt-in."""
    check_pretrained_trunk(load_config(path))  # the release URL: fine
    cfg = load_config(path)
    cfg.model.backbone.init_cfg = None
    frozen = '' if variant_of(path) == 'full' else 'frozen '
    with pytest.raises(
            ValueError,
            match=rf'no pretrained ViT, so training would start from a '
            rf'random {frozen}ViT.*allow_random_trunk=True'):
        check_pretrained_trunk(cfg)
    for demo in VIT_DEMO.values():
        check_pretrained_trunk(load_config(osp.join(ROOT, demo)))


def test_demo_configs_build_and_run_forward():
    for task, rel in VIT_DEMO.items():
        cfg = Config.fromfile(osp.join(ROOT, rel))
        model = build_model(copy.deepcopy(cfg))
        assert isinstance(model.backbone, DTLVisionTransformer)
        outs = model.extract_feat(torch.zeros(1, 3, 128, 160))
        assert len(outs) == (5 if task == 'coco' else 4)


@pytest.fixture(scope='module')
def vit_runs(toy_workspace):
    """One short training of each toy ViT demo through tools/train.py."""
    runs = {}

    def get(task):
        if task not in runs:
            wd = toy_workspace / f'wd_vit_{task}'
            out = run_tool(toy_workspace, tool('train.py'),
                           osp.join(ROOT, VIT_DEMO[task]), '--work-dir',
                           str(wd), '--cfg-options', *SHORT[task])
            assert 'Parameters (trainable / frozen)' in out
            runs[task] = wd
        return runs[task]

    return get


@pytest.mark.slow
@pytest.mark.parametrize('task,lib', [('ade20k', mmseg), ('coco', mmdet)])
def test_toy_vit_trains_and_tests_with_our_and_the_librarys_tools(
        toy_workspace, vit_runs, task, lib):
    ckpt = vit_runs(task) / FINAL[task]
    state = torch.load(ckpt, weights_only=False)['state_dict']
    # a random trunk (no pretrained file) is saved in full
    assert any(k.startswith('backbone.vit.layers.') for k in state)
    assert any(k.startswith('backbone.csn.') for k in state)
    config = osp.join(ROOT, VIT_DEMO[task])
    own = osp.join(osp.dirname(lib.__file__), '.mim', 'tools', 'test.py')
    for script in (tool('test.py'), own):
        out = run_tool(toy_workspace, script, config, str(ckpt), '--work-dir',
                       str(toy_workspace / f'test_vit_{task}'))
        values = metrics_in(out, METRIC_KEYS[task])
        assert all(0 <= v <= 100 for v in values.values())
