"""Several tasks on one frozen plain ViT: predictions equal to each model
alone, the shared blocks run once per batch, mismatches refused."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.structures import BaseDataElement

from dtl_mm.apis.inferencer import samples_for
from dtl_mm.apis.multitask import MultiTaskModel, TrunkSharingError
from dtl_mm.apis.runner_setup import build_model, load_config
from helpers.config_utils import VIT_DEMO
from helpers.tool_utils import DEMO, ROOT
from helpers.vit_utils import randomise_all

SCOPES = dict(coco='mmdet', ade20k='mmseg')


def config(task, **backbone):
    cfg = load_config(osp.join(ROOT, VIT_DEMO[task]))
    cfg.model.backbone.update(backbone)
    return cfg


@pytest.fixture(scope='module')
def vit_weights():
    """One random frozen ViT (no small pretrained ViT exists offline)."""
    torch.manual_seed(0)
    vit = build_model(config('ade20k')).backbone.vit
    randomise_all(vit, 0.05)
    return vit.state_dict()


def build(cfg, vit_weights, seed=1):
    """A model "fine-tuned" from the shared ViT: its frozen ViT holds
    ``vit_weights``, its side network and heads are random."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    model.backbone.vit.load_state_dict(vit_weights)
    if hasattr(model.backbone, 'csn'):
        randomise_all(model.backbone.csn, 0.02)
    return model.eval()


def batch(n=2, size=(128, 160)):
    inputs = torch.randn(n, 3, *size)
    meta = dict(img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0))
    base = [BaseDataElement(metainfo=meta) for _ in range(n)]
    return inputs, {t: samples_for(s, base, inputs) for t, s in SCOPES.items()}


def assert_same_as_alone(mt, refs):
    inputs, samples = batch()
    preds = mt.predict(inputs, samples)
    for task, ref_model in refs.items():
        with torch.no_grad():
            ref = ref_model(
                inputs, copy.deepcopy(samples[task]), mode='predict')
        for a, b in zip(preds[task], ref):
            if task == 'coco':
                assert len(b.pred_instances) > 0
                for key in ('bboxes', 'scores', 'labels', 'masks'):
                    assert torch.equal(
                        a.pred_instances.get(key),
                        b.pred_instances.get(key)), key
            else:
                assert torch.equal(a.seg_logits.data, b.seg_logits.data)


def count_calls(backbone):
    calls = {}
    for i, layer in enumerate(backbone.vit.layers, start=1):
        calls[i] = 0
        layer.register_forward_hook(
            lambda *a, i=i: calls.__setitem__(i, calls[i] + 1))
    return calls


@pytest.mark.slow  # multi-second: out of the fast loop
def test_detector_and_segmenter_share_blocks_up_to_the_smallest_m(vit_weights):
    models = dict(
        coco=build(config('coco'), vit_weights),
        ade20k=build(config('ade20k', first_g_block=9), vit_weights))
    refs = copy.deepcopy(models)
    mt = MultiTaskModel(models)
    assert mt.shared_blocks == 7
    # w reads at 1 and 6; the outputs of the tasks' output blocks (the
    # segmenter's 3 and 6 are inside the shared trunk)
    assert mt.keep == (1, 6)
    assert {3, 6} <= set(mt.keep_outputs)
    seg_vit = mt.models['ade20k'].backbone.backbone.vit
    assert seg_vit.layers is mt.trunk.vit.layers
    assert seg_vit.pos_embed is mt.trunk.vit.pos_embed
    calls = count_calls(mt.trunk)
    assert_same_as_alone(mt, refs)
    assert all(calls[b] == 1 for b in range(1, 8))  # once per batch
    assert all(calls[b] == 2 for b in range(8, 13))  # once per task


@pytest.mark.slow  # several ViT models
def test_fixed_vits_share_the_whole_trunk(vit_weights):
    models = {}
    for t in SCOPES:
        cfg = config(t, type='PretrainedVisionTransformer', frozen=True)
        for option in ('variant', 'rank'):  # DTL's, not the ViT's
            cfg.model.backbone.pop(option)
        models[t] = build(cfg, vit_weights)
    refs = copy.deepcopy(models)
    mt = MultiTaskModel(models)
    assert mt.shared_blocks == 12
    calls = count_calls(mt.trunk)
    assert_same_as_alone(mt, refs)
    assert set(calls.values()) == {1}


def test_different_frozen_weights_are_refused(vit_weights):
    other = dict(vit_weights)
    other['layers.2.attn.attn.in_proj_weight'] = \
        other['layers.2.attn.attn.in_proj_weight'] + 1e-3
    models = dict(
        detector=build(config('coco'), vit_weights),
        segmenter=build(config('ade20k'), other))
    with pytest.raises(
            TrunkSharingError,
            match="'detector' and 'segmenter'.*different frozen ViT"):
        MultiTaskModel(models)


def test_swin_and_vit_are_refused(vit_weights):
    swin = build_model(load_config(osp.join(ROOT, DEMO['ade20k']))).eval()
    models = dict(vit=build(config('coco'), vit_weights), swin=swin)
    with pytest.raises(TrunkSharingError, match=r'ViT vs Swin'):
        MultiTaskModel(models)
