"""Inference on images with our configs and checkpoints, one task or several
on one frozen Swin trunk.

A single task is mmdet's ``DetInferencer`` or mmseg's ``MMSegInferencer``
(:func:`build_inferencer` picks it from the config's ``default_scope``): they
build the model, load the checkpoint through mmengine's ``load_checkpoint``
and read the dataset's classes and palette from it. Several tasks are
:class:`MultiTaskInferencer`: one library inferencer per task for the model,
its visualizer and its JSON form, one common preprocessing for all of them,
and a :class:`~dtl_mm.multitask.MultiTaskModel` that runs the shared frozen
trunk once per batch.
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmengine.logging import print_log
from rich.progress import track

from .multitask import MultiTaskModel
from .runner_setup import load_config

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def list_images(spec: str) -> List[str]:
    """The images an input argument names: an image file, a folder (its
    images, sorted) or a glob pattern (sorted matches)."""
    if osp.isdir(spec):
        files = [osp.join(spec, f) for f in sorted(os.listdir(spec))]
        found = [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
        what = f'folder {spec}'
    elif osp.isfile(spec):
        return [spec]
    elif glob.has_magic(spec):
        found = [f for f in sorted(glob.glob(spec)) if osp.isfile(f)]
        what = f'glob pattern {spec!r}'
    else:
        raise FileNotFoundError(f'input not found: {spec} (expected an '
                                f'image, a folder or a glob pattern)')
    if not found:
        raise FileNotFoundError(
            f'no images in {what} (extensions: {", ".join(IMAGE_EXTENSIONS)})')
    return found


def build_inferencer(config,
                     checkpoint: str,
                     device: str = 'cpu',
                     show_progress: bool = False):
    """mmdet's ``DetInferencer`` or mmseg's ``MMSegInferencer`` for one of
    our configs (a path or a Config) and a checkpoint of it."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg = load_config(config) if isinstance(config, str) else config
    if cfg.default_scope == 'mmdet':
        from mmdet.apis import DetInferencer
        return DetInferencer(
            cfg, checkpoint, device=device, show_progress=show_progress)
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(cfg, checkpoint, device=device)
    inferencer.show_progress = show_progress
    # draw with the checkpoint's classes and palette (MMSegInferencer sets
    # them only inside its own visualize())
    inferencer.visualizer.set_dataset_meta(**inferencer.model.dataset_meta)
    return inferencer


def task_names(configs: Sequence[str]) -> List[str]:
    """Config file stems, numbered where two are the same."""
    stems = [osp.splitext(osp.basename(str(c)))[0] for c in configs]
    names = []
    for i, stem in enumerate(stems):
        n = stems[:i].count(stem)
        names.append(stem if not n else f'{stem}-{n + 1}')
    return names


class MultiTaskInferencer:
    """K (config, checkpoint) pairs run on the same images, sharing the
    frozen Swin trunk where the models allow it.

    Every task sees the same input tensor: the images go through one common
    preprocessing (test pipeline and data preprocessor of the task
    ``preprocess_from``, the first by default), and each task's predictions
    are mapped back to the original image size by its own head.

    Args:
        tasks: [(config, checkpoint)]; config is a path or a Config.
        names: task names (default: the config file stems).
        device (str): 'cpu', 'cuda', ...
        preprocess_from (int | str): index or name of the task whose test
            pipeline and data preprocessor every task uses.
        show_progress (bool): a progress bar over the batches.
    """

    def __init__(self,
                 tasks: Sequence[Tuple],
                 names: Sequence[str] = None,
                 device: str = 'cpu',
                 preprocess_from: Union[int, str] = 0,
                 show_progress: bool = True):
        if not tasks:
            raise ValueError('MultiTaskInferencer needs at least one '
                             '(config, checkpoint) pair')
        names = list(names or task_names([c for c, _ in tasks]))
        if len(set(names)) != len(names) or len(names) != len(tasks):
            raise ValueError(f'need one distinct name per task, got {names}')
        self.inferencers = {
            name: build_inferencer(cfg, ckpt, device)
            for name, (cfg, ckpt) in zip(names, tasks)
        }
        self.scopes = {
            name: inf.cfg.default_scope
            for name, inf in self.inferencers.items()
        }
        common = self._common(preprocess_from)
        self.preprocess_from = common
        inf = self.inferencers[common]
        self.pipeline, self.collate_fn = inf.pipeline, inf.collate_fn
        self.data_preprocessor = inf.model.data_preprocessor
        self.model = MultiTaskModel(
            {name: inf.model
             for name, inf in self.inferencers.items()})
        self.model.eval()
        self.show_progress = show_progress

    def _common(self, which) -> str:
        names = list(self.inferencers)
        if isinstance(which, int) and 0 <= which < len(names):
            return names[which]
        if which in names:
            return which
        raise ValueError(f'preprocess_from must be a task index in '
                         f'0..{len(names) - 1} or a name in {names}, got '
                         f'{which!r}')

    def describe(self) -> str:
        return (f'common preprocessing: {self.preprocess_from}\n' +
                self.model.describe())

    def __call__(self,
                 inputs: Union[str, Sequence[str]],
                 batch_size: int = 1,
                 out_dir: str = None,
                 pred_score_thr: float = 0.3) -> Dict[str, list]:
        """Predict every task on the images ``inputs`` names (see
        :func:`list_images`); with ``out_dir``, draw each prediction and
        write it as JSON beside the drawing (one sub-folder per task when
        there are several).

        Returns:
            dict: task name -> one predicted data sample per image.
        """
        if isinstance(inputs, str):
            inputs = [inputs]
        images = [img for spec in inputs for img in list_images(spec)]
        batches = [
            images[i:i + batch_size] for i in range(0, len(images), batch_size)
        ]
        preds = {name: [] for name in self.inferencers}
        for batch in (track(batches, description='Inference')
                      if self.show_progress else batches):
            for name, out in self.predict_batch(batch).items():
                preds[name].extend(out)
        if out_dir is not None:
            self.write(images, preds, out_dir, pred_score_thr)
        return preds

    def predict_batch(self, images: Sequence[str]) -> Dict[str, list]:
        """One preprocessed batch through every task."""
        data = self.collate_fn([self.pipeline(img) for img in images])
        data = self.data_preprocessor(data, False)
        inputs = data['inputs']
        return self.model.predict(
            inputs, {
                name: samples_for(scope, data['data_samples'], inputs)
                for name, scope in self.scopes.items()
            })

    def write(self, images, preds, out_dir, pred_score_thr=0.3):
        """Drawing and JSON per image and task, side by side."""
        stems = unique_stems(images)
        for name, inf in self.inferencers.items():
            folder = osp.join(out_dir, name) if len(preds) > 1 else out_dir
            os.makedirs(folder, exist_ok=True)
            for img_path, stem, pred in zip(images, stems, preds[name]):
                img = mmcv.imread(img_path, channel_order='rgb')
                ext = osp.splitext(img_path)[1]
                draw(inf, stem, img, pred, osp.join(folder, stem + ext),
                     pred_score_thr)
                with open(osp.join(folder, stem + '.json'), 'w') as f:
                    json.dump(
                        dict(img_path=img_path, **prediction_dict(inf, pred)),
                        f)
        print_log(
            f'drawings and JSON predictions written to {out_dir}',
            logger='current')


def samples_for(scope: str, samples, inputs) -> list:
    """The batch's meta information in ``scope``'s own data sample type.

    mmdet reads ``batch_input_shape`` / ``pad_shape``; mmseg resizes its
    logits to ``pad_shape`` and crops ``img_padding_size`` (left, right,
    top, bottom) before resizing to ``ori_shape``. Both preprocessors pad
    at the bottom and right, whichever produced the batch.
    """
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample as SampleType
    else:
        from mmseg.structures import SegDataSample as SampleType
    batch_shape = tuple(inputs.shape[-2:])
    out = []
    for sample in samples:
        meta = dict(
            sample.metainfo,
            batch_input_shape=batch_shape,
            pad_shape=batch_shape)
        h, w = meta['img_shape'][:2]
        meta['img_padding_size'] = [
            0, batch_shape[1] - w, 0, batch_shape[0] - h
        ]
        out.append(SampleType(metainfo=meta))
    return out


def unique_stems(paths: Sequence[str]) -> List[str]:
    stems = [osp.splitext(osp.basename(p))[0] for p in paths]
    return [
        s if stems[:i].count(s) == 0 else f'{s}_{stems[:i].count(s)}'
        for i, s in enumerate(stems)
    ]


def draw(inferencer, name, img, pred, out_file, pred_score_thr=0.3):
    """The library visualizer's drawing: boxes / masks with class names and
    scores, or the label map in the dataset's palette."""
    kwargs = dict(pred_score_thr=pred_score_thr) if hasattr(
        pred, 'pred_instances') else {}
    inferencer.visualizer.add_datasample(
        name,
        img,
        pred,
        draw_gt=False,
        show=False,
        out_file=out_file,
        **kwargs)


def prediction_dict(inferencer, pred) -> dict:
    """JSON-ready predictions: mmdet's own form for detection (boxes in
    x1 y1 x2 y2 pixels of the original image, labels, scores, RLE masks);
    the label map (rows of class indices) for segmentation."""
    classes = list(inferencer.model.dataset_meta.get('classes') or [])
    if hasattr(pred, 'pred_instances'):
        return dict(inferencer.pred2dict(pred), classes=classes)
    label_map = pred.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
    return dict(sem_seg=label_map.tolist(), classes=classes)
