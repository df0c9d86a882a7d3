"""Several tasks on one frozen Swin trunk: predictions equal to each model
alone, the shared blocks run once per batch, tasks that cannot share are
refused or run alone; mmdet's / mmseg's inferencers on our checkpoints;
tools/infer.py against tools/test.py."""
import copy
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement
from PIL import Image

from dtl_mm.apis.inferencer import MultiTaskInferencer, samples_for
from dtl_mm.apis.multitask import MultiTaskModel, TrunkSharingError
from dtl_mm.apis.runner_setup import build_model
from helpers.multitask_utils import (SCOPES, alone, alone_on_images,
                                     assert_same, build, config, images,
                                     task_workspace)
from helpers.swin_utils import randomise
from helpers.tool_utils import DEMO, ROOT, run_tool, tool


def as_backbone(cfg, kind, **extra):
    """The config with another backbone over the same Swin arguments."""
    swin = {
        k: v
        for k, v in cfg.model.backbone.items()
        if k in ('embed_dims', 'depths', 'num_heads', 'window_size',
                 'drop_path_rate', 'out_indices', 'init_cfg')
    }
    cfg.model.backbone = dict(type=kind, **swin, **extra)
    return cfg


@pytest.fixture(scope='module')
def swin_weights():
    """One random frozen Swin (no small pretrained Swin exists offline)."""
    torch.manual_seed(0)
    return build_model(config('ade20k')).backbone.swin.state_dict()


@pytest.fixture(scope='module')
def workspace(tmp_path_factory, swin_weights):
    return task_workspace(tmp_path_factory.mktemp('mt'), swin_weights)


def batch(scopes, n=2, size=(128, 160)):
    """A synthetic preprocessed batch and each task's data samples."""
    inputs = torch.randn(n, 3, *size)
    meta = dict(img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0))
    base = [BaseDataElement(metainfo=meta) for _ in range(n)]
    return inputs, {t: samples_for(s, base, inputs) for t, s in scopes.items()}


def count_calls(trunk):
    """Calls of the patch embedding (key 0) and of every block (1..N)."""
    calls = {0: 0}
    trunk.swin.patch_embed.register_forward_hook(
        lambda *a: calls.__setitem__(0, calls[0] + 1))
    blocks = [b for st in trunk.swin.stages for b in st.blocks]
    for i, blk in enumerate(blocks, start=1):
        calls[i] = 0
        blk.register_forward_hook(
            lambda *a, i=i: calls.__setitem__(i, calls[i] + 1))
    return calls


def check_against_alone(inferencer, ws, tasks, imgs):
    """Every task's multi-task predictions equal its model alone (built
    anew from the same files, with its own preprocessing) on the same
    images."""
    preds = inferencer(imgs, batch_size=len(imgs))
    for task, name in zip(tasks, inferencer.inferencers):
        ref = alone_on_images(config(task), str(ws / f'{task}.pth'), imgs)
        assert_same(preds[name], ref)
        assert preds[name][0].ori_shape == (128, 160)


def test_two_tasks_equal_each_model_alone(workspace):
    tasks = ('voc', 'ade20k')
    inf = MultiTaskInferencer([(config(t), str(workspace / f'{t}.pth'))
                               for t in tasks],
                              names=tasks,
                              show_progress=False)
    model = inf.model
    assert model.shared_blocks == 7 and model.keep == (2, 4, 5)
    # one copy of the frozen Swin: the segmentor uses the detector's stages
    seg_swin = model.models['ade20k'].backbone.backbone.swin
    assert seg_swin.stages is model.trunk.swin.stages
    assert seg_swin.patch_embed is model.trunk.swin.patch_embed
    check_against_alone(inf, workspace, tasks, images(workspace)[:2])


@pytest.mark.slow  # three detectors/segmentors
def test_three_tasks_run_the_shared_blocks_once(workspace):
    tasks = ('coco', 'voc', 'ade20k')
    inf = MultiTaskInferencer([(config(t), str(workspace / f'{t}.pth'))
                               for t in tasks],
                              names=tasks,
                              show_progress=False)
    calls = count_calls(inf.model.trunk)
    preds = inf(images(workspace)[:2])  # two batches of one
    assert [len(p) for p in preds.values()] == [2, 2, 2]
    assert calls[0] == 2
    assert all(calls[b] == 2 for b in range(1, 8))  # once per batch
    assert all(calls[b] == 2 * 3 for b in range(8, 13))  # once per task
    check_against_alone(inf, workspace, tasks, images(workspace)[2:3])


def test_different_first_add_back_blocks_share_up_to_the_smallest(
        swin_weights):
    models = dict(
        voc=build(config('voc', first_g_block=10), swin_weights),
        ade20k=build(config('ade20k'), swin_weights))
    refs = copy.deepcopy(models)
    assert models['voc'].backbone.layout.w_blocks == (2, 4, 5, 10, 12)
    mt = MultiTaskModel(models)
    assert mt.shared_blocks == 7 and mt.keep == (2, 4, 5)
    inputs, samples = batch(SCOPES)
    preds = mt.predict(inputs, samples)
    for t in models:
        assert_same(preds[t], alone(refs[t], inputs, samples[t]))


def test_fixed_backbones_share_the_whole_trunk(swin_weights):
    models = {
        t: build(
            as_backbone(config(t), 'PretrainedSwinTransformer', frozen=True),
            swin_weights)
        for t in ('voc', 'ade20k')
    }
    refs = copy.deepcopy(models)
    mt = MultiTaskModel(models)
    assert mt.shared_blocks == 12
    calls = count_calls(mt.trunk)
    inputs, samples = batch(SCOPES)
    preds = mt.predict(inputs, samples)
    assert set(calls.values()) == {1}
    for t in models:
        assert_same(preds[t], alone(refs[t], inputs, samples[t]))


def test_different_frozen_weights_are_refused(swin_weights):
    other = dict(swin_weights)
    key = 'stages.1.blocks.0.attn.w_msa.qkv.weight'
    other[key] = other[key] + 1e-3
    models = dict(
        detector=build(config('voc'), swin_weights),
        segmenter=build(config('ade20k'), other))
    with pytest.raises(
            TrunkSharingError,
            match="'detector' and 'segmenter'.*different frozen"):
        MultiTaskModel(models)


def test_different_architectures_are_refused(swin_weights):
    models = dict(
        detector=build(config('voc'), swin_weights),
        segmenter=build(config('ade20k', window_size=8), {}))
    with pytest.raises(
            TrunkSharingError,
            match="'detector' and 'segmenter'.*window_size"):
        MultiTaskModel(models)


def test_non_dtl_variant_runs_alone(swin_weights, capsys):
    lora = as_backbone(config('voc'), 'LoRASwinTransformer', rank=4)
    models = dict(
        lora=build(lora, swin_weights),
        ade20k=build(config('ade20k'), swin_weights))
    randomise(models['lora'].backbone, 0.02)  # only LoRA's (trainable) A, C
    refs = copy.deepcopy(models)
    mt = MultiTaskModel(models)
    assert 'runs alone' in mt.describe()
    assert 'inside every Swin block' in mt.describe()
    assert models['lora'].backbone.swin.stages is not mt.trunk.swin.stages
    inputs, samples = batch(SCOPES | dict(lora='mmdet'))
    preds = mt.predict(inputs, samples)
    for t in models:
        assert_same(preds[t], alone(refs[t], inputs, samples[t]))


def test_odd_image_sizes_map_back_to_the_original(workspace, tmp_path):
    """Both tasks map their predictions back to an odd original size: a
    label map of that size; boxes inside the image."""
    img = np.array(Image.open(images(workspace)[0]))[:100, :150]
    path = str(tmp_path / 'odd.jpg')
    Image.fromarray(img).save(path)
    inf = MultiTaskInferencer([(config(t), str(workspace / f'{t}.pth'))
                               for t in ('voc', 'ade20k')],
                              names=('voc', 'ade20k'),
                              show_progress=False)
    preds = inf(path)
    assert preds['ade20k'][0].pred_sem_seg.data.shape[-2:] == (100, 150)
    boxes = preds['voc'][0].pred_instances.bboxes
    assert len(boxes) and boxes[:, 2].max() <= 150 and boxes[:, 3].max() <= 100


@pytest.mark.parametrize('task', ['voc', 'ade20k'])
def test_library_inferencers_read_our_checkpoints(workspace, task):
    """mmdet's DetInferencer / mmseg's MMSegInferencer, used as their docs
    show, on our config and checkpoint: the same predictions as ours."""
    img = images(workspace)[0]
    cfg_path, ckpt = osp.join(ROOT, DEMO[task]), str(workspace / f'{task}.pth')
    if task == 'voc':
        from mmdet.apis import DetInferencer
        out = DetInferencer(
            cfg_path, ckpt, device='cpu', show_progress=False)(
                img, return_datasamples=True)
        theirs = out['predictions']
    else:
        from mmseg.apis import MMSegInferencer
        theirs = [
            MMSegInferencer(cfg_path, ckpt,
                            device='cpu')(img, return_datasamples=True)
        ]
    ours = MultiTaskInferencer([(cfg_path, ckpt)], show_progress=False)(img)
    assert_same(next(iter(ours.values())), theirs)


@pytest.mark.slow  # tools/test.py and tools/infer.py, end to end
def test_infer_tool_matches_test_tool(workspace):
    """tools/infer.py, one task and two, writes drawings and JSON whose
    boxes, labels and label maps are tools/test.py's on the same images."""
    ws = workspace
    run_tool(ws, tool('test.py'), osp.join(ROOT, DEMO['voc']),
             str(ws / 'voc.pth'), '--work-dir', str(ws / 'test_voc'), '--out',
             str(ws / 'voc.pkl'))
    run_tool(ws, tool('test.py'), osp.join(ROOT, DEMO['ade20k']),
             str(ws / 'ade20k.pth'), '--work-dir', str(ws / 'test_ade'),
             '--out', str(ws / 'ade_pred'))
    voc_imgs = str(ws / 'data/toy/voc/VOCdevkit/VOC2007/JPEGImages/2007_test*')
    out = run_tool(ws, tool('infer.py'), osp.join(ROOT, DEMO['voc']),
                   str(ws / 'voc.pth'), voc_imgs, '--out-dir',
                   str(ws / 'single'), '--batch-size', '4')
    assert 'Inference' in out  # the progress bar
    out = run_tool(
        ws, tool('infer.py'),
        str(ws / 'data/toy/ade20k/'
            'ADEChallengeData2016/images/validation'), '--task',
        osp.join(ROOT, DEMO['voc']), str(ws / 'voc.pth'), '--task',
        osp.join(ROOT, DEMO['ade20k']), str(ws / 'ade20k.pth'), '--out-dir',
        str(ws / 'multi'), '--batch-size', '4')
    assert 'share the frozen Swin trunk' in out
    with open(ws / 'voc.pkl', 'rb') as f:
        tested = pickle.load(f)
    assert len(tested) == 4
    multi_voc = ws / 'multi' / osp.splitext(osp.basename(DEMO['voc']))[0]
    multi_ade = ws / 'multi' / osp.splitext(osp.basename(DEMO['ade20k']))[0]
    for i, ref in enumerate(tested):
        stem = osp.splitext(osp.basename(ref['img_path']))[0]
        ade_stem = f'ADE_valid_{i + 1:08d}'
        for pred_file in (ws / 'single' / f'{stem}.json',
                          multi_voc / f'{ade_stem}.json'):
            pred = json.loads(pred_file.read_text())
            inst = ref['pred_instances']
            assert len(inst['labels']) > 0  # boxes to compare
            assert pred['labels'] == inst['labels'].tolist()
            np.testing.assert_allclose(
                pred['bboxes'], inst['bboxes'], atol=1e-4)
            assert pred['classes'] == ['square', 'circle', 'triangle']
        assert (ws / 'single' / f'{stem}.jpg').stat().st_size > 0
        seg = json.loads((multi_ade / f'{ade_stem}.json').read_text())
        tested_map = np.array(Image.open(ws / 'ade_pred' / f'{ade_stem}.png'))
        # test.py writes ADE20K's on-disk values (class index + 1)
        assert np.array_equal(np.array(seg['sem_seg']) + 1, tested_map)
        assert (multi_ade / f'{ade_stem}.jpg').stat().st_size > 0
