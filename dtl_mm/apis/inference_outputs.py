"""Where multi-task inference writes, and what: each input's output names
(unique per task), the task folders, the refusal to overwrite an input,
the writer of drawings and JSON predictions, the drawing and the JSON form
of one prediction."""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import mmcv
import numpy as np
from mmengine.logging import print_log


def unique_inputs(images: Sequence[str]) -> List[str]:
    """The images, each file once (the first time it is named)."""
    seen, out = set(), []
    for img in images:
        key = osp.abspath(img)
        if key not in seen:
            seen.add(key)
            out.append(img)
    return out


def output_names(images: Sequence[str]) -> Dict[str, Tuple[str, str]]:
    """image -> (drawing, JSON) paths relative to the output folder: the
    image's path relative to the deepest folder that holds every input, so
    that two inputs never share a name and a name does not depend on the
    order of the inputs. The JSON is ``<name without extension>.json``, or
    ``<name>.json`` where two images of one folder differ only in their
    extension."""
    paths = [osp.abspath(p) for p in images]
    root = osp.commonpath([osp.dirname(p) for p in paths]) if paths else ''
    rels = [osp.relpath(p, root) for p in paths]
    stems = [osp.splitext(r)[0] for r in rels]
    return {
        img: (rel, (stem if stems.count(stem) == 1 else rel) + '.json')
        for img, rel, stem in zip(images, rels, stems)
    }


class OutputOverwritesInputError(ValueError):
    """An output file of the run would be one of its input images."""


def output_folders(tasks: Sequence[str], out_dir: str) -> Dict[str, str]:
    """task -> its output folder: ``out_dir``, or a sub-folder per task
    when there are several."""
    return {
        name: osp.join(out_dir, name) if len(tasks) > 1 else out_dir
        for name in tasks
    }


def _file_ids(path: str) -> set:
    """What makes two paths one file: the real path (symbolic links,
    ``..``) and, for a file that exists, its device and inode (hard links,
    a case-insensitive file system)."""
    ids = {osp.normcase(osp.realpath(path))}
    try:
        st = os.stat(path)
    except OSError:
        return ids
    return ids | {(st.st_dev, st.st_ino)}


def outputs_on_inputs(images: Sequence[str], out_dir: str,
                      tasks: Sequence[str]) -> List[Tuple[str, str]]:
    """(output, input) for each drawing or JSON file a run of ``tasks`` on
    ``images`` into ``out_dir`` would write over one of the images (e.g.
    ``out_dir`` is the input folder, or an ancestor of it whose mirrored
    names land on the inputs)."""
    inputs = {}
    for img in images:
        for key in _file_ids(img):
            inputs.setdefault(key, img)
    hits = []
    names = output_names(images)
    for folder in output_folders(tasks, out_dir).values():
        for img in images:
            for rel in names[img]:
                out = osp.join(folder, rel)
                hit = next((inputs[k] for k in _file_ids(out) if k in inputs),
                           None)
                if hit is not None:
                    hits.append((out, hit))
    return hits


def overwrite_message(hits: Sequence[Tuple[str, str]], out_dir: str) -> str:
    out, img = hits[0]
    return (f'--out-dir {out_dir} would overwrite {len(hits)} input '
            f'file(s) with predictions (e.g. {out} is the input {img}); '
            f'give an output folder outside the inputs\' folders')


class PredictionWriter:
    """Draws and writes each image's predictions into ``out_dir`` (one
    sub-folder per task when there are several), mirroring the inputs'
    relative paths (:func:`output_names`)."""

    def __init__(self, inferencers: Dict, images: Sequence[str], out_dir: str,
                 pred_score_thr: float):
        self.inferencers = inferencers
        self.names = output_names(images)
        self.out_dir = out_dir
        self.pred_score_thr = pred_score_thr
        self.folders = output_folders(list(inferencers), out_dir)
        for folder in [out_dir, *self.folders.values()]:
            if osp.exists(folder) and not osp.isdir(folder):
                raise NotADirectoryError(
                    f'output folder {folder} is a file; give --out-dir a '
                    f'folder (it is created if missing)')
        # before anything is created or written
        hits = outputs_on_inputs(images, out_dir, list(inferencers))
        if hits:
            raise OutputOverwritesInputError(overwrite_message(hits, out_dir))
        for folder in [out_dir, *self.folders.values()]:
            os.makedirs(folder, exist_ok=True)

    def write(self, paths: Sequence[str], preds: Dict[str, list]):
        for i, img_path in enumerate(paths):
            img = mmcv.imread(img_path, channel_order='rgb')
            drawing, json_name = self.names[img_path]
            for name, inf in self.inferencers.items():
                pred, folder = preds[name][i], self.folders[name]
                os.makedirs(
                    osp.dirname(osp.join(folder, drawing)), exist_ok=True)
                warn_if_nothing_drawn(name, img_path, pred,
                                      self.pred_score_thr)
                draw(inf, osp.basename(drawing), img, pred,
                     osp.join(folder, drawing), self.pred_score_thr)
                with open(osp.join(folder, json_name), 'w') as f:
                    json.dump(
                        dict(img_path=img_path, **prediction_dict(inf, pred)),
                        f)


def warn_if_nothing_drawn(task, img_path, pred, pred_score_thr):
    """Says so when no box / mask of an image reaches the drawing threshold
    (an empty drawing otherwise looks like a failed model or a bug)."""
    if 'pred_instances' not in pred:
        return
    scores = pred.pred_instances.scores
    # mmdet's visualizer draws the scores above the threshold (not equal)
    if len(scores) and float(scores.max()) > pred_score_thr:
        return
    if not len(scores):
        print_log(
            f'{img_path} ({task}): no predictions at all', logger='current')
        return
    best = float(scores.max())
    print_log(
        f'{img_path} ({task}): no prediction scores above '
        f'{pred_score_thr} (the best scores {best:.3f}), so none is drawn; '
        f'lower the threshold to draw it: --score-thr '
        f'{math.floor(best * 100) / 100}',
        logger='current',
        level=30)


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
