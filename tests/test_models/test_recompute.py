"""Activation checkpointing of the trainable path (dtl_mm/models/
recompute.py): the same gradients, less kept for backward, nothing in eval,
and why mmengine's reentrant config key is refused."""
import copy
import os.path as osp

import pytest
import torch
from measure import checkpointed_heads, measure
from mmengine.config import Config
from mmengine.runner import turn_on_activation_checkpointing

from dtl_mm.analysis.saved_tensors import saved_for_backward
from dtl_mm.analysis.training_step import TrainingStep, synthetic_batch
from dtl_mm.apis.runner_setup import build_model
from dtl_mm.models import recompute
from dtl_mm.models.recompute import (enable_activation_checkpointing,
                                     request_checkpointing)
from dtl_mm.models.swin_presets import TINY_SWIN, TINY_SWIN_CHANNELS
from helpers.tool_utils import DEMO, ROOT, SHORT, dist_train, run_tool, tool

# what the lowmem configs list, per demo task
PARTS = {
    'coco': ['backbone', 'neck', 'rpn_head', 'roi_head'],
    'voc': ['backbone', 'neck', 'bbox_head'],
    'ade20k': ['backbone', 'decode_head', 'auxiliary_head'],
}

SIZE = {'coco': (128, 160), 'voc': (128, 160), 'ade20k': (128, 128)}

# fp32; recomputation repeats the same operations on the same inputs, so
# only the order in which gradients are summed can differ
TOL = dict(rtol=1e-5, atol=1e-6)


def demo_model(task, drop_path=0.2, config=None):
    cfg = Config.fromfile(osp.join(ROOT, config or DEMO[task]))
    cfg.model.backbone.drop_path_rate = drop_path  # stochastic depth on
    torch.manual_seed(0)
    model = build_model(cfg).train()
    with torch.no_grad():  # zero-initialised maps would pass no gradient
        for p in model.parameters():
            if p.requires_grad and not p.abs().sum():
                p.normal_(std=0.02)
    return cfg, model


def step(model, data, seed=1):
    """Gradients of every trainable weight and the batch norms' running
    statistics after one training step from the same random state."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    model.parse_losses(losses)[0].backward()
    grads = {
        n: None if p.grad is None else p.grad.clone()
        for n, p in model.named_parameters() if p.requires_grad
    }
    stats = {n: b.clone() for n, b in model.named_buffers() if 'running' in n}
    return grads, stats


@pytest.mark.parametrize('policy', [True, 'selective', 'trunk'])
@pytest.mark.parametrize(
    'task', [pytest.param('coco', marks=pytest.mark.slow), 'voc', 'ade20k'])
def test_checkpointing_gives_the_same_gradients(task, policy):
    """'trunk': with_cp=True and the frozen trunk recomputed too. The
    checkpointed model is built as a config asks for it (for COCO, the
    checkpointed RoI head type), with the same weights."""
    cfg, model = demo_model(task)
    data = synthetic_batch(cfg, 2, SIZE[task])
    start = copy.deepcopy(model.state_dict())
    ref, ref_stats = step(model, data)
    cp_cfg = copy.deepcopy(cfg)
    request_checkpointing(cp_cfg, PARTS[task][1:])
    model = build_model(cp_cfg).train()
    model.load_state_dict(start)
    model.backbone.with_cp = True if policy == 'trunk' else policy
    model.backbone.recompute_trunk = policy == 'trunk'
    enable_activation_checkpointing(model, cp_cfg[recompute.CONFIG_KEY])
    grads, stats = step(model, data)
    assert set(grads) == set(ref) and ref
    # every trainable weight got a gradient (DDP needs one), and a step
    # that did not touch most of them would compare nothing
    assert not [n for n, g in grads.items() if g is None]
    assert sum(bool(g.abs().sum()) for g in ref.values()) > 0.9 * len(ref)
    for name, g in ref.items():
        torch.testing.assert_close(grads[name], g, **TOL, msg=name)
    # recomputed heads did not count the batch in their statistics twice
    assert stats.keys() == ref_stats.keys()
    for name, s in ref_stats.items():
        torch.testing.assert_close(stats[name], s, rtol=0, atol=0, msg=name)


def tiny_saved(variant, family='voc'):
    overrides = {
        'voc': {
            'model.neck.in_channels': TINY_SWIN_CHANNELS[1:]
        },
        'ade20k': {
            'model.decode_head.in_channels': TINY_SWIN_CHANNELS,
            'model.auxiliary_head.in_channels': TINY_SWIN_CHANNELS[2],
            # not padded up to the 512x512 crop: the small input stays small
            'model.data_preprocessor.size': (96, 128)
        },
    }[family]
    return measure(
        family,
        variant,
        batch=2,  # UperNet's pooling module normalises over the batch
        size=(96, 128),
        what=('saved', ),
        backbone_overrides=TINY_SWIN,
        model_overrides=overrides)


@pytest.mark.parametrize(
    'family', ['voc', pytest.param('ade20k', marks=pytest.mark.slow)])
def test_checkpointing_keeps_less(family):
    rows = {
        v: tiny_saved(v, family)
        for v in ('full+cp+heads', 'dtlv2-ls', 'dtlv2-ls+sel', 'dtlv2-ls+cp',
                  'dtlv2-ls+cp+heads', 'fixed', 'fixed+heads') +
        (('dtlv2-ls+cp+trunk', ) if family == 'voc' else ())
    }
    saved = {v: r['saved_total'] for v, r in rows.items()}
    dtl, cp = rows['dtlv2-ls'], rows['dtlv2-ls+cp']
    # the side network, recomputed from the trunk inputs it reads
    assert 0 < cp['saved_side'] < dtl['saved_side']
    assert cp['saved_backbone'] < dtl['saved_backbone']
    # recomputing the trunk too: its blocks' inputs the side network reads
    # are not kept (they count as the side network's: it reads them)
    if family == 'voc':  # the backbone is the same in both families
        trunk = rows['dtlv2-ls+cp+trunk']
        assert trunk['saved_side'] < cp['saved_side']
        assert trunk['saved_total'] < cp['saved_total']
    # selective: between keeping everything and recomputing everything
    sel = rows['dtlv2-ls+sel']
    assert cp['saved_backbone'] < sel['saved_backbone'] < \
        dtl['saved_backbone']
    # the heads too; DTL then keeps less than full fine-tuning does with
    # the same checkpointing, and no less than the frozen floor
    assert saved['dtlv2-ls+cp+heads'] < saved['dtlv2-ls+cp']
    assert rows['dtlv2-ls+cp+heads']['saved_heads'] == \
        rows['fixed+heads']['saved_heads']
    assert saved['fixed+heads'] < saved['fixed']
    assert saved['fixed+heads'] < saved['dtlv2-ls+cp+heads'] < \
        saved['full+cp+heads']


def test_lowmem_configs_list_what_the_benchmark_checkpoints():
    for family, parts in PARTS.items():
        assert checkpointed_heads(family) == parts[1:]


def test_eval_and_no_grad_do_not_checkpoint(monkeypatch):
    cfg, model = demo_model('voc', drop_path=0.0)
    data = synthetic_batch(cfg, 1, SIZE['voc'])
    model.eval()
    batch = model.data_preprocessor(data, False)
    with torch.no_grad():
        ref = model.backbone(batch['inputs'])
    model.backbone.with_cp = True
    enable_activation_checkpointing(model, PARTS['voc'])
    calls = []
    real = recompute.checkpoint
    monkeypatch.setattr(recompute, 'checkpoint',
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    out = model.backbone(batch['inputs'])  # eval, autograd on
    with torch.no_grad():
        model.predict(batch['inputs'], batch['data_samples'])
    assert not calls
    assert all(torch.equal(a, b) for a, b in zip(out, ref))
    model.train()
    model(**model.data_preprocessor(data, True), mode='loss')
    assert calls  # and in training it does


def test_mmengine_reentrant_wrapper_starves_the_neck():
    """Why the plugin applies the config key itself: mmengine's wrapper
    (reentrant checkpoint) gives FPN no gradients behind a frozen trunk."""
    cfg, model = demo_model('voc', drop_path=0.0)
    data = synthetic_batch(cfg, 1, SIZE['voc'])
    turn_on_activation_checkpointing(model, ['neck'])
    with pytest.warns(UserWarning, match='requires_grad'):
        grads, _ = step(model, data)
    neck = [g for n, g in grads.items() if n.startswith('neck.')]
    assert neck and all(g is None for g in neck)
    assert all(g is not None for n, g in grads.items()
               if n.startswith('bbox_head.'))


def test_bad_part_name_is_named():
    _, model = demo_model('voc')
    with pytest.raises(ValueError, match=r"no part 'necks'.*'neck'"):
        enable_activation_checkpointing(model, ['necks'])


def test_backbone_policy_is_validated():
    from dtl_mm.models import DTLSwinTransformer
    with pytest.raises(ValueError, match='with_cp must be'):
        DTLSwinTransformer(**TINY_SWIN, with_cp='all')


@pytest.mark.slow  # a short training through tools/train.py
def test_config_key_is_applied_non_reentrantly(toy_workspace, tmp_path):
    out = run_tool(toy_workspace, tool('train.py'),
                   osp.join(ROOT, DEMO['voc']), '--work-dir',
                   str(tmp_path / 'wd'), '--cfg-options', *SHORT['voc'],
                   'checkpointed_parts=[backbone,neck,bbox_head]')
    assert ('checkpointed_parts (non-reentrant, in training only): '
            "backbone (with_cp=True), neck.forward, bbox_head.forward") in out
    # mmengine's own (reentrant) wrapper did not run as well
    assert 'Enabling the "activation_checkpointing" feature' not in out
    ckpt = torch.load(tmp_path / 'wd' / 'epoch_1.pth', weights_only=False)
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(ROOT, DEMO['voc']))
    fresh = build_model(cfg).state_dict()
    # the neck trained
    assert not torch.equal(ckpt['state_dict']['neck.fpn_convs.0.conv.weight'],
                           fresh['neck.fpn_convs.0.conv.weight'])


def test_saved_split_attributes_the_side_network():
    cfg, model = demo_model('voc', drop_path=0.0)
    row = saved_for_backward(
        TrainingStep(model, synthetic_batch(cfg, 1, SIZE['voc']),
                     torch.device('cpu')))
    assert row['saved_side'] > 0 and row['saved_backbone'] > 0
    assert row['saved_total'] == (
        row['saved_backbone'] + row['saved_side'] + row['saved_heads'])


@pytest.mark.slow  # two processes on gloo
def test_two_process_training_with_checkpointing(toy_workspace, tmp_path):
    wd = tmp_path / 'wd'
    rc, out = dist_train(toy_workspace, wd, *SHORT['voc'],
                         'train_dataloader.batch_size=2',
                         'model.backbone.drop_path_rate=0.2',
                         'checkpointed_parts=[backbone,neck,bbox_head]')
    assert rc == 0, out[-4000:]
    log = open(next(wd.glob('*/*.log'))).read()
    assert 'find_unused_parameters=False' in log
    assert 'backbone (with_cp=True), neck.forward, bbox_head.forward' in log
    # two iterations: DDP fails on the second if a weight got no gradient
    assert 'trainable weights identical on all 2 ranks after iteration 2' \
        in log


VIT_ADE20K = 'configs/demo/upernet_vit-t_dtlv2-ls_toy-ade20k.py'


@pytest.mark.slow  # multi-second: out of the fast loop
@pytest.mark.parametrize('policy', [True, 'selective'])
def test_vit_checkpointing_gives_the_same_gradients_and_keeps_less(policy):
    """The ViT backbone takes the same policies and config key: the same
    gradients, less kept for backward in the backbone and side network."""
    cfg, model = demo_model('ade20k', config=VIT_ADE20K)
    data = synthetic_batch(cfg, 2, SIZE['ade20k'])
    before = {n: b.clone() for n, b in model.named_buffers()}
    ref, _ = step(model, data)
    kept = saved_for_backward(TrainingStep(model, data, torch.device('cpu')))
    for n, b in model.named_buffers():
        b.copy_(before[n])
    if policy is True:  # the config key, as for a Swin backbone
        assert enable_activation_checkpointing(
            model, ['backbone']) == ['backbone (with_cp=True)']
    else:
        model.backbone.with_cp = policy
    grads, _ = step(model, data)
    assert set(grads) == set(ref) and ref
    assert not [n for n, g in grads.items() if g is None]
    for name, g in ref.items():
        torch.testing.assert_close(grads[name], g, **TOL, msg=name)
    kept_cp = saved_for_backward(
        TrainingStep(model, data, torch.device('cpu')))
    assert kept_cp['saved_backbone'] < kept['saved_backbone']
    assert kept_cp['saved_side'] <= kept['saved_side']
