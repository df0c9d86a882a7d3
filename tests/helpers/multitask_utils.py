"""Tasks fine-tuned from one frozen Swin, for the multi-task and inference
tests: the demo configs, models built over a shared Swin, checkpoints saved
as the runner saves them, and prediction comparisons."""
import copy
import json
import os.path as osp

import torch
from mmengine.registry import DATASETS, init_default_scope
from mmengine.runner import save_checkpoint

from dtl_mm.apis.runner_setup import build_model, load_config
from dtl_mm.testing.toy_data import MAKERS
from helpers.swin_utils import randomise
from helpers.tool_utils import DEMO, ROOT

TASKS = ('voc', 'ade20k', 'coco')
SCOPES = dict(voc='mmdet', coco='mmdet', ade20k='mmseg')


def config(task, **backbone):
    cfg = load_config(osp.join(ROOT, DEMO[task]))
    cfg.model.backbone.update(backbone)
    return cfg


def build(cfg, swin_weights, seed=1):
    """A model "fine-tuned" from the shared Swin: its frozen Swin is
    ``swin_weights``, its side network and heads are random."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    own = model.backbone.swin.state_dict()
    model.backbone.swin.load_state_dict({
        k: swin_weights[k] if k in swin_weights else v
        for k, v in own.items()
    })
    if hasattr(model.backbone, 'csn'):
        randomise(model.backbone.csn, 0.02)
    return model.eval()


def task_workspace(ws, swin_weights, tasks=TASKS):
    """Toy data in the three layouts under ``ws``, and one checkpoint per
    task saved the way the runner saves them (state_dict + the dataset's
    meta)."""
    toy_data(ws)
    for task in tasks:
        cfg = config(task)
        save_task(ws, cfg, build(cfg, swin_weights), task)
    return ws


def voc_and_ade20k_workspace(ws):
    """voc and ade20k checkpoints "fine-tuned" from one random frozen Swin
    (and the toy data) in ``ws``."""
    torch.manual_seed(0)
    swin = build_model(config('ade20k')).backbone.swin.state_dict()
    return task_workspace(ws, swin, tasks=('voc', 'ade20k'))


def toy_data(ws):
    """The toy data in the three layouts under ``ws/data/toy``."""
    for name, make in MAKERS.items():
        make(str(ws / 'data' / 'toy' / name), n_train=2, n_val=4)


def save_task(ws, cfg, model, name):
    """``model`` saved as ``ws/<name>.pth`` the way the runner saves it
    (state_dict + the dataset's meta); returns the path."""
    init_default_scope(cfg.default_scope)
    dataset = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset['lazy_init'] = True
    meta = DATASETS.build(dataset).metainfo
    path = str(ws / f'{name}.pth')
    save_checkpoint(
        dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)),
        path)
    return path


def images(ws):
    """The 4 toy validation images (the same in every layout)."""
    return sorted(str(p) for p in (ws / 'data/toy/coco/val2017').glob('*'))


def alone(model, inputs, samples):
    with torch.no_grad():
        return model(inputs, copy.deepcopy(samples), mode='predict')


def assert_same(preds, ref):
    assert len(preds) == len(ref)
    for a, b in zip(preds, ref):
        if 'pred_instances' in b:
            pa, pb = a.pred_instances, b.pred_instances
            assert len(pb) > 0
            for key in ('bboxes', 'scores', 'labels', 'masks'):
                if key in pb:
                    assert torch.equal(pa.get(key), pb.get(key)), key
        else:
            assert torch.equal(a.seg_logits.data, b.seg_logits.data)
            assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


def alone_on_images(cfg, checkpoint, imgs):
    """The predictions of one model alone, as mmdet's / mmseg's inferencer
    builds and preprocesses it, on one batch of images."""
    return alone_outputs(cfg, checkpoint, imgs)[0]


def alone_outputs(cfg, checkpoint, imgs):
    """(predictions, JSON) of one model alone on one batch of images: the
    JSON is what tools/infer.py writes for each image, as loaded back."""
    from dtl_mm.apis.dtl_inferencer import DTLInferencer
    from dtl_mm.apis.inference_outputs import prediction_dict
    inf = DTLInferencer(cfg, checkpoint, device="cpu", show_progress=False)
    data = inf.model.data_preprocessor(
        inf.collate_fn([inf.pipeline(i) for i in imgs]), False)
    preds = alone(inf.model, data['inputs'], data['data_samples'])
    jsons = [
        json.loads(json.dumps(dict(img_path=i, **prediction_dict(inf, p))))
        for i, p in zip(imgs, preds)
    ]
    return preds, jsons
