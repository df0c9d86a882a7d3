"""tools/infer.py and MultiTaskInferencer on hostile input: odd sizes and
tasks that preprocess differently (exactly each model alone), unreadable
files (skipped, named, the rest written as it comes), colliding names,
mixed sizes in a segmentation batch, an output folder that is a file, and
predictions that stay below the drawing threshold."""
import gc
import os
import os.path as osp
import subprocess
import sys
import weakref

import numpy as np
import pytest
from PIL import Image

from dtl_mm.apis import inference_outputs
from dtl_mm.apis import inferencer as inferencer_module
from dtl_mm.apis.inference_outputs import output_names
from dtl_mm.apis.inferencer import MultiTaskInferencer
from helpers.multitask_utils import (alone_on_images, assert_same, config,
                                     images, voc_and_ade20k_workspace)
from helpers.tool_utils import DEMO, ROOT, tool


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return voc_and_ade20k_workspace(tmp_path_factory.mktemp('infer'))


def two_tasks(ws, **kw):
    return MultiTaskInferencer([(config(t), str(ws / f'{t}.pth'))
                                for t in ('voc', 'ade20k')],
                               names=('voc', 'ade20k'),
                               show_progress=False,
                               **kw)


def odd_image(ws, path, size=(517, 333)):
    """A toy image resized to ``size`` (width, height)."""
    Image.open(images(ws)[0]).resize(size).save(path)
    return str(path)


@pytest.fixture
def logged(monkeypatch):
    """The inferencer's log lines (its own and its outputs')."""
    lines = []
    real = inferencer_module.print_log

    def record(msg, *args, **kwargs):
        lines.append(msg)
        real(msg, *args, **kwargs)

    for module in (inferencer_module, inference_outputs):
        monkeypatch.setattr(module, 'print_log', record)
    return lines


def test_odd_size_gives_each_task_exactly_its_own_result(
        workspace, tmp_path, logged):
    """517x333: the detector pads to 160x128, the segmentor reads 160x103;
    each task's predictions equal its model alone, bit for bit."""
    img = odd_image(workspace, tmp_path / 'odd.jpg')
    inf = two_tasks(workspace)
    preds = inf([img])
    for task in ('voc', 'ade20k'):
        ref = alone_on_images(
            config(task), str(workspace / f'{task}.pth'), [img])
        assert_same(preds[task], ref)
    assert preds['ade20k'][0].pred_sem_seg.data.shape[-2:] == (333, 517)
    assert any("task 'ade20k': its preprocessed input differs" in m
               for m in logged), logged
    assert inf.trunk_use['ade20k'] == [0, 1]


def test_tasks_that_preprocess_differently_are_named_and_exact(
        workspace, tmp_path, logged):
    """A detector with bgr_to_rgb=False beside the segmentor: the field is
    named, and the detector sees its own channel order."""
    cfg = config('voc')
    cfg.model.data_preprocessor.bgr_to_rgb = False
    inf = MultiTaskInferencer(
        [(cfg, str(workspace / 'voc.pth')),
         (config('ade20k'), str(workspace / 'ade20k.pth'))],
        names=('voc', 'ade20k'),
        show_progress=False)
    assert any('data_preprocessor.bgr_to_rgb True vs False' in m
               or 'data_preprocessor.bgr_to_rgb False vs True' in m
               for m in logged), logged
    imgs = images(workspace)[:1]  # 160x128: no padding, yet other colours
    preds = inf(imgs)
    assert_same(preds['voc'],
                alone_on_images(cfg, str(workspace / 'voc.pth'), imgs))
    assert_same(
        preds['ade20k'],
        alone_on_images(config('ade20k'), str(workspace / 'ade20k.pth'), imgs))
    assert inf.trunk_use == {'voc': [0, 1], 'ade20k': [0, 1]}


def test_unreadable_inputs_are_skipped_and_named(workspace, tmp_path, logged):
    folder = tmp_path / 'in'
    folder.mkdir()
    good = images(workspace)[:3]
    for p in good:
        (folder / osp.basename(p)).write_bytes(open(p, 'rb').read())
    (folder / 'corrupt.jpg'
     ).write_bytes(open(good[0], 'rb').read()[:200] + b'\0' * 100)
    (folder / 'notes.jpg').write_text('not an image')
    (folder / 'x.jpg').mkdir()
    out = tmp_path / 'out'
    inf = two_tasks(workspace)
    preds = inf(str(folder), out_dir=str(out))
    assert sorted(osp.basename(p) for p in inf.skipped) == [
        'corrupt.jpg', 'notes.jpg', 'x.jpg'
    ]
    for name in ('corrupt.jpg', 'notes.jpg', 'x.jpg'):
        assert sum(f'skipped {folder / name}' in m for m in logged) == 1
    assert any('3 of 6 images predicted' in m and '3 skipped' in m
               for m in logged)
    assert [len(p) for p in preds.values()] == [3, 3]
    for task in ('voc', 'ade20k'):
        written = sorted(os.listdir(out / task))
        assert written == sorted(
            [osp.basename(p)
             for p in good] + [osp.basename(p)[:-4] + '.json' for p in good])


def test_results_are_written_as_each_batch_finishes(workspace, tmp_path,
                                                    monkeypatch):
    """A crash in the third batch leaves the first two images written."""
    inf = two_tasks(workspace)
    calls = []
    real = inf.model.predict

    def crash_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError('injected failure')
        return real(*args)

    monkeypatch.setattr(inf.model, 'predict', crash_third)
    with pytest.raises(RuntimeError, match='injected'):
        inf(images(workspace), out_dir=str(tmp_path / 'out'))
    for task in ('voc', 'ade20k'):
        assert len(list((tmp_path / 'out' / task).glob('*.json'))) == 2


def test_no_prediction_is_kept_when_not_asked_for(workspace, tmp_path,
                                                  monkeypatch):
    """return_predictions=False (tools/infer.py): every prediction, with
    its full-size segmentation logits, is freed once written, so memory
    does not grow with the number of images."""
    refs = []
    real = inference_outputs.PredictionWriter.write

    def track_write(self, paths, preds):
        refs.extend(weakref.ref(p) for out in preds.values() for p in out)
        return real(self, paths, preds)

    monkeypatch.setattr(inference_outputs.PredictionWriter, 'write',
                        track_write)
    inf = two_tasks(workspace)
    preds = inf(
        images(workspace),
        out_dir=str(tmp_path / 'out'),
        return_predictions=False)
    assert preds == {'voc': [], 'ade20k': []}
    gc.collect()
    assert len(refs) == 8 and all(r() is None for r in refs)


def test_same_stems_in_other_folders_get_their_own_outputs(
        workspace, tmp_path):
    src = images(workspace)
    paths = []
    for rel, i in (('a/img.jpg', 0), ('b/img.jpg', 1), ('c/img_1.jpg', 2),
                   ('c/img_1.png', 3)):
        os.makedirs(tmp_path / 'in' / osp.dirname(rel), exist_ok=True)
        Image.open(src[i]).save(tmp_path / 'in' / rel)
        paths.append(str(tmp_path / 'in' / rel))
    names = output_names(paths)
    assert [names[p] for p in paths] == [('a/img.jpg', 'a/img.json'),
                                         ('b/img.jpg', 'b/img.json'),
                                         ('c/img_1.jpg', 'c/img_1.jpg.json'),
                                         ('c/img_1.png', 'c/img_1.png.json')]
    # stable: the same names whatever the order of the inputs
    assert output_names(paths[::-1]) == names
    out = tmp_path / 'out'
    two_tasks(workspace)(str(tmp_path / 'in' / '*' / 'img*'), out_dir=str(out))
    for rel in ('a/img', 'b/img'):
        pred = (out / 'voc' / f'{rel}.json').read_text()
        assert f'in/{rel}.jpg' in pred
    assert (out / 'ade20k' / 'c' / 'img_1.png.json').is_file()


def test_out_dir_that_is_a_file_fails_before_inference(workspace, tmp_path,
                                                       monkeypatch):
    target = tmp_path / 'out'
    target.write_text('a file')
    inf = two_tasks(workspace)
    monkeypatch.setattr(inf.model, 'predict', None)  # never reached
    with pytest.raises(NotADirectoryError, match=f'{target} is a file'):
        inf(images(workspace), out_dir=str(target))
    assert target.read_text() == 'a file'


def test_mixed_sizes_in_a_segmentation_batch(workspace, tmp_path):
    """batch_size 2 over a 160x128 and a 517x333 image: mmseg needs one size
    per batch, so the batch is split; results equal each image alone."""
    imgs = [images(workspace)[0], odd_image(workspace, tmp_path / 'o.jpg')]
    inf = MultiTaskInferencer(
        [(config('ade20k'), str(workspace / 'ade20k.pth'))],
        show_progress=False)
    preds = next(iter(inf(imgs, batch_size=2).values()))
    for img, pred in zip(imgs, preds):
        ref = alone_on_images(
            config('ade20k'), str(workspace / 'ade20k.pth'), [img])
        assert_same([pred], ref)


def test_nothing_above_the_threshold_says_so(workspace, tmp_path, logged):
    inf = MultiTaskInferencer([(config('voc'), str(workspace / 'voc.pth'))],
                              show_progress=False)
    preds = inf(
        images(workspace)[:1], out_dir=str(tmp_path), pred_score_thr=1.1)
    best = float(preds[next(iter(preds))][0].pred_instances.scores.max())
    assert any(
        f'no prediction scores above 1.1 (the best scores {best:.3f})' in m
        and '--score-thr 0.' in m for m in logged), logged


@pytest.mark.slow  # the tool as a script
def test_infer_tool_exit_status_help_and_up_front_checks(workspace, tmp_path):
    ws = workspace

    def infer(*args):
        return subprocess.run(
            [sys.executable, tool('infer.py'), *args],
            cwd=ws,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=ROOT))

    help_text = infer('--help').stdout
    assert '(default: 0.3)' in help_text
    (tmp_path / 'file').write_text('x')
    proc = infer(
        osp.join(ROOT, DEMO['voc']), str(ws / 'voc.pth'),
        images(ws)[0], '--out-dir', str(tmp_path / 'file'))
    assert proc.returncode == 2 and 'is a file' in proc.stderr
    folder = tmp_path / 'in'
    folder.mkdir()
    Image.open(images(ws)[0]).save(folder / 'good.jpg')
    (folder / 'bad.jpg').write_text('not an image')
    proc = infer(
        osp.join(ROOT, DEMO['voc']), str(ws / 'voc.pth'), str(folder),
        '--out-dir', str(tmp_path / 'out'), '--score-thr', '1.1')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f'skipped {folder / "bad.jpg"}' in out
    assert 'no prediction scores above 1.1' in out
    assert (tmp_path / 'out' / 'good.json').is_file()
    assert np.array(Image.open(tmp_path / 'out' / 'good.jpg')).size


@pytest.mark.slow  # trains the COCO demo briefly
def test_instance_masks_are_drawn_filled_in_their_colour(
        short_run, toy_workspace, tmp_path):
    """The drawing tools/infer.py makes of an instance: inside its mask the
    pixels carry its class colour (mmdet's visualizer: filled, alpha 0.8,
    colour jittered by up to 64, white outlines), outside its box they are
    the image's. The instance is a trained demo model's prediction with
    its mask made one solid rectangle: a 1-epoch model's masks are ragged
    pieces whose outlines cover most of them, which would test the model
    rather than the drawing."""
    import cv2
    import torch

    from dtl_mm.apis.inference_outputs import draw
    ckpt = str(short_run('coco') / 'epoch_1.pth')
    img = str(sorted((toy_workspace / 'data/toy/coco/val2017').glob('*'))[0])
    inf = MultiTaskInferencer([(config('coco'), ckpt)], show_progress=False)
    name, single = next(iter(inf.inferencers.items()))
    pred = inf([img])[name][0]
    assert len(pred.pred_instances) > 0
    pred.pred_instances = pred.pred_instances[[0]]
    h, w = pred.pred_instances.masks.shape[-2:]
    x1, y1, x2, y2 = w // 4, h // 4, w // 2, h // 2
    solid = torch.zeros((1, h, w), dtype=torch.bool)
    solid[0, y1:y2, x1:x2] = True
    pred.pred_instances.masks = solid
    pred.pred_instances.bboxes = torch.tensor([[x1, y1, x2, y2]],
                                              dtype=torch.float32)
    orig = np.array(Image.open(img).convert('RGB'), dtype=float)
    draw(
        single,
        'x',
        orig.astype(np.uint8),
        pred,
        str(tmp_path / 'x.png'),
        pred_score_thr=0)
    drawn = np.array(Image.open(tmp_path / 'x.png'), dtype=float)
    colour = np.array(
        single.model.dataset_meta['palette'][int(
            pred.pred_instances.labels[0])],
        dtype=float)
    seen = (drawn - 0.2 * orig) / 0.8  # the colour blended in
    # inside the mask, away from its outline and from the label text that
    # mmdet writes in the box's top rows
    inside = cv2.erode(solid[0].numpy().astype(np.uint8),
                       np.ones((5, 5), np.uint8)).astype(bool)
    inside[:y1 + 16] = False

    # one fill colour under the mask: the blended-in colour is the same at
    # every pixel, and it is the class colour, jittered
    fill = np.median(seen[inside], axis=0)
    assert np.abs(fill - colour).max() <= 70, (fill, colour)
    on_fill = (np.abs(seen[inside] - fill).max(-1) <= 8).mean()
    assert on_fill > 0.8, on_fill
    # which the image alone is not
    assert (np.abs(orig[inside] - np.median(orig[inside], axis=0)).max(-1) <=
            8).mean() < 0.5
    # outside the box, and the label band that may run past its right
    # edge, the image is untouched
    outside = np.ones(inside.shape, bool)
    outside[max(y1 - 20, 0):y2 + 5, max(x1 - 5, 0):x2 + 5] = False
    outside[max(y1 - 20, 0):y1 + 16, max(x1 - 5, 0):] = False
    assert outside.mean() > 0.6  # most of the image
    assert np.array_equal(drawn[outside], orig[outside])
