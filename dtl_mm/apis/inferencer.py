"""Inference on images with our configs and checkpoints, one task or several
on one frozen Swin trunk.

A single task is :class:`~dtl_mm.apis.dtl_inferencer.DTLInferencer`, i.e.
mmdet's ``DetInferencer`` or mmseg's ``MMSegInferencer`` (picked from the
config's ``default_scope``): they build the model, load the checkpoint
through mmengine's ``load_checkpoint`` and read the dataset's classes and
palette from it. Several tasks are
:class:`MultiTaskInferencer`: one library inferencer per task for the model,
its preprocessing, its visualizer and its JSON form, and a
:class:`~dtl_mm.apis.multitask.MultiTaskModel` that runs the shared frozen
trunk once per batch for the tasks whose inputs are identical.
"""
import glob
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from rich.progress import track

from .dtl_inferencer import DTLInferencer
from .inference_outputs import PredictionWriter, unique_inputs
from .multitask import MultiTaskModel

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


def task_names(configs: Sequence[str]) -> List[str]:
    """Config file stems, numbered where two are the same."""
    stems = [
        osp.splitext(osp.basename(getattr(c, 'filename', None) or str(c)))[0]
        for c in configs
    ]
    names = []
    for i, stem in enumerate(stems):
        n = stems[:i].count(stem)
        names.append(stem if not n else f'{stem}-{n + 1}')
    return names


class Preprocessing:
    """One test pipeline and data preprocessor, and the tasks that use it
    (tasks whose configs give both the same share one)."""

    def __init__(self, inferencer, tasks: List[str]):
        self.pipeline = inferencer.pipeline
        self.collate_fn = inferencer.collate_fn
        self.data_preprocessor = inferencer.model.data_preprocessor
        self.tasks = tasks
        # mmseg's preprocessor asserts that a test batch has one image size
        self.one_size_per_batch = inferencer.cfg.default_scope == 'mmseg'

    def __call__(self, packed: Sequence[dict]):
        data = self.data_preprocessor(self.collate_fn(list(packed)), False)
        return data['inputs'], data['data_samples']


def preprocess_config(inferencer) -> Dict:
    """What decides the tensor a task's model sees: its test pipeline and
    its data preprocessor (mean, std, channel order, pad value, size
    divisor, pad size, ...)."""
    cfg = inferencer.cfg
    pipeline = [
        dict(t) for t in cfg.test_dataloader.dataset.pipeline
        if not str(t.get('type', '')).endswith('LoadAnnotations')
    ]
    dp = cfg.model.get('data_preprocessor') or {}
    return dict(
        scope=cfg.default_scope,  # where the pipeline's types are found
        pipeline=pipeline,
        data_preprocessor=dp.to_dict() if hasattr(dp, 'to_dict') else dict(dp))


def preprocess_difference(a: Dict, b: Dict) -> str:
    """'data_preprocessor.bgr_to_rgb True vs False; ...' (what differs)."""
    diff = []
    da, db = a['data_preprocessor'], b['data_preprocessor']
    for key in sorted(set(da) | set(db)):
        if da.get(key) != db.get(key):
            diff.append(f'data_preprocessor.{key} {da.get(key, "unset")!r} '
                        f'vs {db.get(key, "unset")!r}')
    if a['pipeline'] != b['pipeline'] or a['scope'] != b['scope']:
        diff.append('test pipelines differ')
    return '; '.join(diff)


class MultiTaskInferencer:
    """K (config, checkpoint) pairs run on the same images, sharing the
    frozen Swin trunk where the models allow it and their inputs are the
    same.

    Every task reads its images through its own test pipeline and data
    preprocessor, so each model sees exactly the tensor it sees alone.
    Tasks whose configs preprocess alike get one preprocessing between
    them; the trunk is shared between the tasks whose preprocessed batches
    are bit-identical (always, for tasks that preprocess alike; batch by
    batch otherwise: e.g. a detector pads to a multiple of 32, a segmentor
    not at all, so their inputs agree only on sizes that need no padding).
    A task whose input differs runs its own trunk on its own input, with a
    warning.

    Args:
        tasks: [(config, checkpoint)]; config is a path or a Config.
        names: task names (default: the config file stems).
        device (str): 'cpu', 'cuda', ...
        show_progress (bool): a progress bar over the batches.
        backbone_from_pretrained (str, optional): the frozen Swin file for
            checkpoints that do not hold it (lean checkpoints whose
            recorded pretrained file moved); see :class:`DTLInferencer`.
    """

    def __init__(self,
                 tasks: Sequence[Tuple],
                 names: Sequence[str] = None,
                 device: str = 'cpu',
                 show_progress: bool = True,
                 backbone_from_pretrained: str = None):
        if not tasks:
            raise ValueError('MultiTaskInferencer needs at least one '
                             '(config, checkpoint) pair')
        names = list(names or task_names([c for c, _ in tasks]))
        if len(set(names)) != len(names) or len(names) != len(tasks):
            raise ValueError(f'need one distinct name per task, got {names}')
        self.inferencers = {
            name: DTLInferencer(
                cfg,
                ckpt,
                device=device,
                backbone_from_pretrained=backbone_from_pretrained,
                show_progress=False)
            for name, (cfg, ckpt) in zip(names, tasks)
        }
        self.preprocessings = self._group_preprocessing()
        self.model = MultiTaskModel(
            {name: inf.model
             for name, inf in self.inferencers.items()})
        self.model.eval()
        self.show_progress = show_progress
        self.skipped: List[str] = []
        # task -> [batches it shared the trunk on, batches it ran alone on]
        self.trunk_use = {name: [0, 0] for name in self.inferencers}

    def _group_preprocessing(self) -> List[Preprocessing]:
        configs = {
            name: preprocess_config(inf)
            for name, inf in self.inferencers.items()
        }
        groups: List[List[str]] = []
        for name, cfg in configs.items():
            for group in groups:
                if configs[group[0]] == cfg:
                    group.append(name)
                    break
            else:
                groups.append([name])
        for group in groups[1:]:
            first = groups[0][0]
            diff = preprocess_difference(configs[first], configs[group[0]])
            print_log(
                f'tasks {first!r} and {group[0]!r} preprocess their images '
                f'differently ({diff}): each reads its own input, and the '
                f'frozen trunk is shared only on batches where the inputs '
                f'come out identical',
                logger='current',
                level=30)
        return [Preprocessing(self.inferencers[g[0]], g) for g in groups]

    def describe(self) -> str:
        lines = [self.model.describe()]
        if len(self.preprocessings) > 1:
            lines.append('preprocessing: ' +
                         ' | '.join(', '.join(p.tasks)
                                    for p in self.preprocessings) +
                         ' (trunk shared across groups only on identical '
                         'inputs)')
        return '\n'.join(lines)

    def __call__(self,
                 inputs: Union[str, Sequence[str]],
                 batch_size: int = 1,
                 out_dir: str = None,
                 pred_score_thr: float = 0.3,
                 return_predictions: bool = True) -> Dict[str, list]:
        """Predict every task on the images ``inputs`` names (see
        :func:`list_images`); with ``out_dir``, draw each prediction and
        write it as JSON beside the drawing (one sub-folder per task when
        there are several), each image as soon as its batch is done.

        An input that cannot be read as an image is skipped with a warning
        naming it (``self.skipped`` lists them); the others go on.

        Returns:
            dict: task name -> one predicted data sample per image read
            (empty lists with ``return_predictions=False``, which keeps
            memory flat in the number of images).
        """
        if isinstance(inputs, str):
            inputs = [inputs]
        images = unique_inputs(
            [img for spec in inputs for img in list_images(spec)])
        writer = None
        if out_dir is not None:
            writer = PredictionWriter(self.inferencers, images, out_dir,
                                      pred_score_thr)
        self.skipped = []
        self.trunk_use = {name: [0, 0] for name in self.inferencers}
        batches = [
            images[i:i + batch_size] for i in range(0, len(images), batch_size)
        ]
        preds = {name: [] for name in self.inferencers}
        for batch in (track(batches, description='Inference')
                      if self.show_progress else batches):
            for paths, out in self.predict_images(batch):
                if writer is not None:
                    writer.write(paths, out)
                if return_predictions:
                    for name, samples in out.items():
                        preds[name].extend(samples)
        self._summary(len(images), out_dir)
        return preds

    def _summary(self, n_images: int, out_dir: Optional[str]):
        for name, (shared, alone) in self.trunk_use.items():
            if alone and self.model.task(name).shares and len(
                    self.trunk_use) > 1:
                print_log(
                    f'task {name!r} ran its own trunk on {alone} of '
                    f'{shared + alone} batches (its input differed from '
                    f'every other task\'s)',
                    logger='current')
        done = n_images - len(self.skipped)
        where = f'; drawings and JSON predictions in {out_dir}' \
            if out_dir is not None else ''
        if self.skipped:
            print_log(
                f'{done} of {n_images} images predicted{where}; '
                f'{len(self.skipped)} skipped (not readable as images): '
                f'{self.skipped}',
                logger='current',
                level=30)
        else:
            print_log(
                f'{done} of {n_images} images predicted{where}',
                logger='current')

    def predict_images(self, images: Sequence[str]):
        """Yields (image paths, task name -> predictions) for ``images``
        (one batch; split where a segmentor needs one size per batch)."""
        packed = {p: [] for p in range(len(self.preprocessings))}
        readable = []
        for img in images:
            try:
                outs = [p.pipeline(img) for p in self.preprocessings]
            except Exception as e:  # a corrupt file, a folder, not an image
                self.skipped.append(img)
                print_log(
                    f'skipped {img}: it cannot be read as an image '
                    f'({type(e).__name__}: {str(e)[:200]})',
                    logger='current',
                    level=30)
                continue
            readable.append(img)
            for p, out in enumerate(outs):
                packed[p].append(out)
        for idx in same_size_groups(readable, packed, self.preprocessings):
            yield [readable[i] for i in idx], self.predict_batch(
                {p: [packed[p][i] for i in idx]
                 for p in packed})

    def predict_batch(self, packed: Dict[int, list]) -> Dict[str, list]:
        """One batch (the pipeline outputs of every preprocessing) through
        every task; identical inputs are one tensor, so the trunk runs once
        for them."""
        inputs, samples, seen = {}, {}, []
        for p, prep in enumerate(self.preprocessings):
            x, data_samples = prep(packed[p])
            same = [y for y in seen if same_tensor(x, y)]
            x = same[0] if same else x
            if not same:
                seen.append(x)
            for name in prep.tasks:
                inputs[name], samples[name] = x, data_samples
        for name in inputs:
            shared = any(inputs[o] is inputs[name] for o in inputs
                         if o != name and self.model.task(o).shares)
            self.trunk_use[name][0 if shared else 1] += 1
            if not shared and self.trunk_use[name] == [0, 1] and \
                    len(inputs) > 1 and self.model.task(name).shares:
                print_log(
                    f'task {name!r}: its preprocessed input differs from '
                    f'the other tasks\' (shape {tuple(inputs[name].shape)})'
                    f', so it runs its own trunk on it: its predictions '
                    f'are those of the model alone, without the saving',
                    logger='current',
                    level=30)
        return self.model.predict(inputs, samples)


def same_tensor(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


def same_size_groups(images, packed, preprocessings) -> List[List[int]]:
    """Indices of ``images`` in batches that every preprocessing can stack:
    images of one input size together where a preprocessing needs that
    (mmseg's), in their order of first appearance."""
    groups: Dict[tuple, List[int]] = {}
    for i in range(len(images)):
        key = tuple(
            tuple(packed[p][i]['inputs'].shape)
            for p, prep in enumerate(preprocessings)
            if prep.one_size_per_batch)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


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
