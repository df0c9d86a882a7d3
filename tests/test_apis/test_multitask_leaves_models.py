"""MultiTaskModel leaves the models it is given as they were: same
backbone objects, own trunk modules, same weights and the same predictions
alone afterwards (Swin and ViT trunks)."""
import copy

import pytest
import test_multitask_vit as vit_tasks
import torch
from test_multitask import batch

from dtl_mm.apis.multitask import MultiTaskModel, TrunkBranch
from dtl_mm.apis.runner_setup import build_model
from helpers.multitask_utils import SCOPES, alone, assert_same, build, config


def structure(model):
    """Every module and tensor object of ``model``, by name (the trunk
    record is made anew on each call, so it is left out)."""
    tensors = model.state_dict(keep_vars=True)
    return ({n: id(m)
             for n, m in model.named_modules()},
            {n: id(t)
             for n, t in tensors.items() if 'extra_state' not in n})


def check_left_alone(models, inputs, samples):
    refs = copy.deepcopy(models)
    before = {t: structure(m) for t, m in models.items()}
    mt = MultiTaskModel(models)
    assert mt.shared_blocks > 0
    mt.predict(inputs, samples)
    for t, model in models.items():
        assert structure(model) == before[t], t
        assert not isinstance(model.backbone, TrunkBranch)
        assert_same(
            alone(model, inputs, samples[t]), alone(refs[t], inputs,
                                                    samples[t]))
    trunk = {t: models[t].backbone.trunk for t in models}
    first, second = list(trunk.values())[:2]
    for name, module in first.named_children():
        if any(True for _ in module.parameters()):
            assert getattr(second, name) is not module, name
    return mt


@pytest.mark.slow  # multi-second: out of the fast loop
def test_swin_models_are_left_as_they_were():
    torch.manual_seed(0)
    weights = build_model(config('ade20k')).backbone.swin.state_dict()
    models = {t: build(config(t), weights) for t in SCOPES}
    mt = check_left_alone(models, *batch(SCOPES))
    # the multi-task model itself shares one trunk
    assert mt.models['ade20k'].backbone.backbone.swin.stages is \
        models['voc'].backbone.swin.stages


@pytest.mark.slow  # the Swin case is the fast check
@pytest.mark.parametrize('frozen_only', [False, True])
def test_vit_models_are_left_as_they_were(frozen_only):
    torch.manual_seed(0)
    weights = build_model(vit_tasks.config('ade20k')).backbone.vit.state_dict()
    models = {}
    for t in vit_tasks.SCOPES:
        cfg = vit_tasks.config(t)
        if frozen_only:
            cfg = vit_tasks.config(
                t, type='PretrainedVisionTransformer', frozen=True)
            for option in ('variant', 'rank'):
                cfg.model.backbone.pop(option)
        models[t] = vit_tasks.build(cfg, weights)
    check_left_alone(models, *vit_tasks.batch())
