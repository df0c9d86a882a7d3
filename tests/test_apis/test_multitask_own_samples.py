"""Tasks that preprocess alike get one batch and one set of data samples
from their preprocessing, and mmdet / mmseg write each model's predictions
into the data samples it is given: every output of every task (the
returned predictions and the JSON files written) must still be exactly its
model's alone. Two Swin RetinaNets, two ViT UperNets, and detectors beside
a segmentor."""
import json

import pytest
import test_multitask_vit as vit_tasks
import torch

from dtl_mm.apis.inference_outputs import output_names
from dtl_mm.apis.inferencer import MultiTaskInferencer
from dtl_mm.apis.runner_setup import build_model
from helpers.multitask_utils import (alone_outputs, assert_same, build, config,
                                     images, save_task, toy_data)
from helpers.vit_utils import randomise_all

# name -> (trunk, demo task, seed of its side network and heads)
TASKS = {
    'voc-a': ('swin', 'voc', 1),
    'voc-b': ('swin', 'voc', 2),
    'coco': ('swin', 'coco', 1),
    'ade20k': ('swin', 'ade20k', 1),
    'vit-ade-a': ('vit', 'ade20k', 1),
    'vit-ade-b': ('vit', 'ade20k', 2),
}


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """Toy data, and ``task(name)``: (config, checkpoint) of a model of
    ``TASKS`` "fine-tuned" from one random frozen Swin or ViT, saved on
    first use."""
    ws = tmp_path_factory.mktemp('own_samples')
    toy_data(ws)
    torch.manual_seed(0)
    trunks = dict(swin=build_model(config('ade20k')).backbone.swin)
    trunks['vit'] = build_model(vit_tasks.config('ade20k')).backbone.vit
    randomise_all(trunks['vit'], 0.05)
    weights = {k: v.state_dict() for k, v in trunks.items()}
    saved = {}

    def task(name):
        if name not in saved:
            trunk, demo, seed = TASKS[name]
            if trunk == 'swin':
                cfg = config(demo)
                model = build(cfg, weights['swin'], seed)
            else:
                cfg = vit_tasks.config(demo)
                model = vit_tasks.build(cfg, weights['vit'], seed)
            saved[name] = (cfg, save_task(ws, cfg, model, name))
        return saved[name]

    return ws, task


def check_each_task_alone(workspace, names, sharing):
    """Runs ``names`` on two images in one batch, writing into a folder;
    every task's predictions and JSON files equal its model's alone, bit
    for bit: the tasks share the trunk on the same batch tensor as each
    model alone sees, so every sum runs in the same order. ``sharing``:
    tasks expected to get one preprocessing (and so one set of data
    samples). Returns task -> its model's JSON alone."""
    ws, task = workspace
    imgs = images(ws)[:2]
    inf = MultiTaskInferencer([task(n) for n in names],
                              names=names,
                              show_progress=False)
    assert inf.model.shared_blocks > 0
    assert any(set(sharing) <= set(p.tasks)
               for p in inf.preprocessings), sharing
    out = ws / '+'.join(names)
    preds = inf(imgs, batch_size=len(imgs), out_dir=str(out))
    json_names = {img: rel[1] for img, rel in output_names(imgs).items()}
    refs = {}
    for name in names:
        ref_preds, refs[name] = alone_outputs(*task(name), imgs)
        assert_same(preds[name], ref_preds)
        for img, ref in zip(imgs, refs[name]):
            written = json.loads((out / name / json_names[img]).read_text())
            assert written == ref, (name, img)
    # the models differ: one task's outputs in another's place would show
    for a, b in zip(sharing, sharing[1:]):
        assert refs[a] != refs[b], (a, b)
    return refs


def test_two_swin_detectors_that_preprocess_alike(workspace):
    check_each_task_alone(workspace, ('voc-a', 'voc-b'), ('voc-a', 'voc-b'))


@pytest.mark.slow  # two ViT segmentors
def test_two_vit_segmentors_that_preprocess_alike(workspace):
    check_each_task_alone(workspace, ('vit-ade-a', 'vit-ade-b'),
                          ('vit-ade-a', 'vit-ade-b'))


@pytest.mark.slow  # four Swin models
def test_detectors_beside_a_segmentor(workspace):
    """Boxes, scores, labels (two RetinaNets), instance masks (Cascade Mask
    R-CNN) and a label map (UperNet) on one trunk."""
    refs = check_each_task_alone(workspace,
                                 ('voc-a', 'coco', 'voc-b', 'ade20k'),
                                 ('voc-a', 'voc-b'))
    assert all(r['masks'] for r in refs['coco'])
    assert all(r['sem_seg'] for r in refs['ade20k'])
