"""The mmpretrain-ViT configs (configs/vit_mmpretrain/): ViT-B and DINOv2-L
UperNet on ADE20K in every variant build with the parts they promise; the
toy versions train and test through our tools and mmseg's own. Marked
`mmpretrain` (the `vision` stack)."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dtl_mm.apis.multitask import MultiTaskModel
from dtl_mm.apis.runner_setup import build_model, load_config
from dtl_mm.checks.model_check import check_pretrained_trunk
from dtl_mm.models import (DTLMMPretrainViT, LoRAMMPretrainViT,
                           PretrainedMMPretrainViT)
from dtl_mm.utils.param_count import count_parameters
from helpers.swin_utils import skip_random_init
from helpers.tool_utils import ROOT, toy_ade20k_train_then_test

pytestmark = pytest.mark.mmpretrain

FOLDER = osp.join(ROOT, 'configs', 'vit_mmpretrain')
CONFIGS = sorted(glob.glob(osp.join(FOLDER, '*_160k_ade20k-512x512.py')))
DEMOS = sorted(glob.glob(osp.join(FOLDER, '*_toy-ade20k.py')))
VARIANTS = ('full', 'fixed', 'lora', 'dtlv2-ls')
TYPES = {
    'full': PretrainedMMPretrainViT,
    'fixed': PretrainedMMPretrainViT,
    'lora': LoRAMMPretrainViT,
    'dtlv2-ls': DTLMMPretrainViT
}
# arch: (width, blocks, M, trunk parameters at 512x512 (the position
# embedding of a 32 x 32 / 37 x 37 grid), release file)
ARCHS = {
    'vit-b': (768, 12, 7, 86_434_560, 'jx_vit_base_p16_224-80ecf9dd.pth'),
    'dinov2-l': (1024, 24, 13, 304_367_616, 'dinov2_vitl14_pretrain.pth'),
}


def variant_of(path):
    return next(v for v in VARIANTS if f'_{v}_' in osp.basename(path))


def arch_of(path):
    return osp.basename(path).split('_')[1]


def test_every_variant_for_both_archs_and_demos():
    assert {(arch_of(p), variant_of(p))
            for p in CONFIGS} == {(a, v)
                                  for a in ARCHS for v in VARIANTS}
    assert {variant_of(p) for p in DEMOS} == set(VARIANTS)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_with_expected_trainable_parts(path):
    variant, arch = variant_of(path), arch_of(path)
    width, blocks, first_g, trunk_params, release = ARCHS[arch]
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.init_cfg.checkpoint.endswith(release)
    cfg.model.backbone.init_cfg = None
    with skip_random_init():  # counts and types, not values, are checked
        model = build_model(cfg)
    backbone = model.backbone
    assert type(backbone) is TYPES[variant]
    assert backbone.channels == (width, ) and backbone.num_blocks == blocks
    counts = count_parameters(model)
    trunk = counts['trunk']  # the trunk's row, Swin or ViT
    assert trunk['trainable'] + trunk['frozen'] == trunk_params
    assert trunk['frozen' if variant == 'full' else 'trainable'] == 0
    side = counts['side network']['trainable']
    assert (side > 0) == (variant in ('lora', 'dtlv2-ls'))
    if variant == 'dtlv2-ls':
        assert backbone.layout.first_g == first_g
    if arch == 'dinov2-l':  # DINOv2's layer scale and patch 14
        assert backbone.vit.layers[0].attn.gamma1.weight.shape == (width, )
        assert tuple(backbone.vit.patch_resolution) == (37, 37)
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        outs = backbone(x)
    assert [o.shape[1] for o in outs] == list(cfg.model.neck.in_channels)


@pytest.mark.parametrize('path', CONFIGS[:4], ids=osp.basename)
def test_random_vit_needs_the_named_option(path):
    check_pretrained_trunk(load_config(path))  # the release URL: fine
    cfg = load_config(path)
    cfg.model.backbone.init_cfg = None
    frozen = '' if variant_of(path) == 'full' else 'frozen '
    with pytest.raises(
            ValueError,
            match=rf'no pretrained ViT, so training would start from a '
            rf'random {frozen}ViT.*allow_random_trunk=True'):
        check_pretrained_trunk(cfg)
    for demo in DEMOS:  # the demos opt in (no small pretrained ViT exists)
        check_pretrained_trunk(load_config(demo))


@pytest.mark.parametrize('path', DEMOS, ids=osp.basename)
def test_demo_configs_build_and_run_forward(path):
    cfg = Config.fromfile(path)
    model = build_model(copy.deepcopy(cfg))
    assert type(model.backbone) is TYPES[variant_of(path)]
    outs = model.extract_feat(torch.zeros(1, 3, 128, 160))
    assert [o.shape for o in outs] == [(1, 64, 64, 80), (1, 64, 32, 40),
                                       (1, 64, 16, 20), (1, 64, 8, 10)]


def test_segmentors_share_the_frozen_blocks():
    """Two DTL segmentors and a fixed one on one frozen mmpretrain ViT:
    predictions equal to each alone, blocks 1..min(M) run once."""
    from mmengine.structures import BaseDataElement

    from dtl_mm.apis.inferencer import samples_for

    demo = {osp.basename(p).split('_')[2]: p for p in DEMOS}
    torch.manual_seed(0)
    weights = build_model(load_config(demo['dtlv2-ls'])).backbone.vit
    with torch.no_grad():
        for p in weights.parameters():
            p.normal_(0, 0.05)
    models = {}
    for name, path, opts in [('a', demo['dtlv2-ls'], {}),
                             ('b', demo['dtlv2-ls'], dict(first_g_block=9)),
                             ('c', demo['fixed'], {})]:
        cfg = load_config(path)
        cfg.model.backbone.update(opts)
        torch.manual_seed(len(models) + 1)
        model = build_model(cfg)
        model.backbone.vit.load_state_dict(weights.state_dict())
        for p in getattr(model.backbone, 'csn', torch.nn.Module()) \
                .parameters():
            torch.nn.init.normal_(p, std=0.02)
        models[name] = model.eval()
    refs = copy.deepcopy(models)
    mt = MultiTaskModel(models)
    assert mt.shared_blocks == 7
    calls = {i: 0 for i in range(1, 13)}
    for i, layer in enumerate(mt.trunk.vit.layers, start=1):
        layer.register_forward_hook(
            lambda *a, i=i: calls.__setitem__(i, calls[i] + 1))
    size = (128, 160)
    inputs = torch.randn(2, 3, *size)
    meta = dict(img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0))
    base = [BaseDataElement(metainfo=meta) for _ in range(2)]
    samples = {t: samples_for('mmseg', base, inputs) for t in models}
    preds = mt.predict(inputs, samples)
    for task, ref_model in refs.items():
        with torch.no_grad():
            ref = ref_model(
                inputs, copy.deepcopy(samples[task]), mode='predict')
        for a, b in zip(preds[task], ref):
            assert torch.equal(a.seg_logits.data, b.seg_logits.data)
    assert all(calls[b] == 1 for b in range(1, 8))  # once per batch
    assert all(calls[b] == 3 for b in range(8, 13))  # once per task


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['dtlv2-ls', 'lora'])
def test_toy_ade20k_trains_and_tests_with_our_and_mmsegs_tools(
        toy_workspace, variant):
    config = next(p for p in DEMOS if variant_of(p) == variant)
    state = toy_ade20k_train_then_test(toy_workspace, config,
                                       f'mmpretrain_vit_{variant}')
    # a random trunk (no pretrained file) is saved in full, beside what
    # trained
    assert any(k.startswith('backbone.vit.layers.') for k in state)
    trained = 'backbone.csn.' if variant == 'dtlv2-ls' else '.petl_lora.'
    assert any(trained in k for k in state)
