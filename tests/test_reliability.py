"""Faults, bad input and interrupted runs: nothing is lost, every failure
names the file or field."""
import errno
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint
from PIL import Image
from swin_utils import TINY, plain_swin
from tool_utils import (DEMO, ROOT, SHORT, copy_run, dist_cmd, dist_env,
                        dist_train, run_tool, tool)

from dtl_mm.checkpoint import atomic_io, resume
from dtl_mm.checkpoint.atomic_io import AtomicLocalBackend
from dtl_mm.checkpoint.resume import latest_checkpoint
from dtl_mm.checkpoint.safe_load import load_checkpoint_file
from dtl_mm.checks import data_check
from dtl_mm.checks.data_check import DataError, check_config_data
from dtl_mm.checks.model_check import check_model_config
from dtl_mm.engine.hooks import NonFiniteLossHook, RankConsistencyHook
from dtl_mm.models import CheckpointLayoutError, DTLSwinTransformer
from dtl_mm.testing.toy_data import MAKERS


def toy(tmp_path, monkeypatch, name, **kw):
    """Toy data of one task under tmp_path/data/toy, the working folder
    (the demo configs use data/toy/... relative paths)."""
    monkeypatch.chdir(tmp_path)
    MAKERS[name](
        str(tmp_path / 'data' / 'toy' / name), n_train=4, n_val=2, **kw)
    return Config.fromfile(osp.join(ROOT, DEMO[name]))


# ---------------------------------------------------------------- bad data
def test_clean_toy_data_passes(tmp_path, monkeypatch):
    for name in DEMO:
        check_config_data(
            toy(tmp_path, monkeypatch, name), ('train', 'val', 'test'))


def test_missing_image(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    os.remove('data/toy/coco/train2017/000000000002.jpg')
    with pytest.raises(DataError, match=r'missing.*000000000002\.jpg'):
        check_config_data(cfg, ('train', ))


def test_annotation_file_not_json(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    ann = 'data/toy/coco/annotations/instances_val2017.json'
    open(ann, 'w').write('{"images": [')
    with pytest.raises(
            DataError, match='instances_val2017.json: not valid '
            'JSON'):
        check_config_data(cfg, ('val', ))


def test_unknown_category(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    ann = 'data/toy/coco/annotations/instances_train2017.json'
    data = json.load(open(ann))
    data['annotations'][0]['category_id'] = 99
    json.dump(data, open(ann, 'w'))
    with pytest.raises(DataError, match='unknown category_id 99'):
        check_config_data(cfg, ('train', ))


def test_voc_xml_broken_and_unknown_class(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'voc')
    ann_dir = 'data/toy/voc/VOCdevkit/VOC2012/Annotations/'
    xml = ann_dir + sorted(os.listdir(ann_dir))[0]
    good = open(xml).read()
    # objects of other classes are skipped by mmdet (a classes subset):
    # legal, so a warning with counts
    open(xml, 'w').write(
        good.replace('<name>square', '<name>hexagon').replace(
            '<name>circle', '<name>hexagon').replace('<name>triangle',
                                                     '<name>hexagon'))
    warnings = check_config_data(cfg, ('train', ))
    assert any("objects of classes not configured, skipped" in w
               and "x 'hexagon'" in w for w in warnings), warnings
    open(xml, 'w').write(good[:len(good) // 2])
    with pytest.raises(
            DataError, match=osp.basename(xml) + ': not valid '
            'XML'):
        check_config_data(cfg, ('train', ))


def test_segmentation_label_out_of_range(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'ade20k')
    seg_dir = 'data/toy/ade20k/ADEChallengeData2016/annotations/validation/'
    seg = seg_dir + sorted(os.listdir(seg_dir))[0]
    label = cv2.imread(seg, cv2.IMREAD_UNCHANGED)
    label[0, :5] = 200  # ADE20K has 150 classes (values 1..150)
    cv2.imwrite(seg, label)
    with pytest.raises(DataError, match=r'label values \[200\]'):
        check_config_data(cfg, ('val', ))
    label[0, :5] = 255  # the ignore value is fine
    cv2.imwrite(seg, label)
    check_config_data(cfg, ('val', ))
    os.remove(seg)
    with pytest.raises(
            DataError, match='1 label maps missing: .*' + osp.basename(seg)):
        check_config_data(cfg, ('val', ))


@pytest.mark.slow
def test_train_tool_fails_before_training_on_bad_data(tmp_path, monkeypatch):
    toy(tmp_path, monkeypatch, 'coco')
    os.remove('data/toy/coco/val2017/000000000001.jpg')
    proc = subprocess.run([
        sys.executable,
        tool('train.py'),
        osp.join(ROOT, DEMO['coco']), '--work-dir', 'wd'
    ],
                          cwd=tmp_path,
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT),
                          timeout=300)
    assert proc.returncode != 0
    assert 'DataError' in proc.stderr and '000000000001.jpg' in proc.stderr
    assert not osp.exists(tmp_path / 'wd')  # no work started


# ----------------------------------- broken data the check used to miss
COCO_TRAIN = 'data/toy/coco/annotations/instances_train2017.json'
COCO_VAL = 'data/toy/coco/annotations/instances_val2017.json'
ADE = 'data/toy/ade20k/ADEChallengeData2016/'


def edit_json(path, change):
    data = json.load(open(path))
    change(data)
    json.dump(data, open(path, 'w'))
    return data


def test_non_utf8_file_names_are_checked_without_crashing(
        tmp_path, monkeypatch):
    """An ADE20K image and label named with a Latin-1 byte: mmseg trains on
    them, so the check passes, and a problem in them is named legibly."""
    cfg = toy(tmp_path, monkeypatch, 'ade20k')
    img_dir = ADE + 'images/validation/'
    seg_dir = ADE + 'annotations/validation/'
    name = sorted(os.listdir(img_dir))[0][:-4]
    latin1 = name.encode() + b'_caf\xe9'
    try:
        os.rename(img_dir + name + '.jpg', img_dir.encode() + latin1 + b'.jpg')
        os.rename(seg_dir + name + '.png', seg_dir.encode() + latin1 + b'.png')
    except OSError:
        pytest.skip('this file system refuses non-UTF-8 names')
    check_config_data(cfg, ('val', ))  # once cv2.imread's segfault
    seg = seg_dir.encode() + latin1 + b'.png'
    label = np.asarray(Image.open(seg))
    Image.fromarray(label[:-8]).save(seg)
    with pytest.raises(
            DataError,
            match=r'caf\\xe9\.png: 160x120 .*its '
            r'image .*caf\\xe9\.jpg is 160x128'):
        check_config_data(cfg, ('val', ))


def test_latin1_bytes_in_annotation_files(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    raw = open(COCO_VAL, 'rb').read()
    open(COCO_VAL, 'wb').write(raw.replace(b'"shape"', b'"caf\xe9"', 1))
    with pytest.raises(
            DataError,
            match=r'instances_val2017.json: not '
            r'UTF-8 text: byte 0xe9 at line 1, column \d+'):
        check_config_data(cfg, ('val', ))

    cfg = toy(tmp_path, monkeypatch, 'voc')
    lst = 'data/toy/voc/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt'
    lines = open(lst, 'rb').read().split(b'\n')
    lines[1] += b'\xe9'
    open(lst, 'wb').write(b'\n'.join(lines))
    with pytest.raises(
            DataError,
            match=r'trainval.txt: not UTF-8 text: '
            r'byte 0xe9 at line 2'):
        check_config_data(cfg, ('train', ))


def test_polygon_of_fewer_than_3_points(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')

    def shorten(data):
        data['annotations'][1]['segmentation'] = [[10., 10., 20., 20.]]

    for path in (COCO_TRAIN, COCO_VAL):
        ann_id = edit_json(path, shorten)['annotations'][1]['id']
    # evaluated: pycocotools would crash after a whole epoch
    with pytest.raises(
            DataError,
            match=rf'instances_val2017.json: 1 '
            rf'annotations have a polygon of fewer than 3 points'
            rf'.*annotation {ann_id} \(image 0+\d+\.jpg\): a '
            rf'polygon of 4 coordinates'):
        check_config_data(cfg, ('val', ))
    # trained on: mmdet ignores the instance; said once, with its id
    warnings = check_config_data(cfg, ('train', ))
    assert any('1 annotations with a polygon of fewer than 3 points' in w
               and f'annotation {ann_id} ' in w for w in warnings), warnings


def test_empty_annotations_and_test_dev(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    edit_json(COCO_TRAIN, lambda d: d.update(annotations=[]))
    with pytest.raises(
            DataError,
            match='instances_train2017.json: an empty '
            '"annotations" list: nothing to train on'):
        check_config_data(cfg, ('train', ))
    # COCO test-dev: an image list without "annotations", format_only
    edit_json(COCO_VAL, lambda d: d.pop('annotations'))
    with pytest.raises(
            DataError,
            match='instances_val2017.json: no '
            '"annotations".*set format_only=True'):
        check_config_data(cfg, ('test', ))
    cfg.test_evaluator.format_only = True
    check_config_data(cfg, ('test', ))


def test_image_size_differs_from_annotation(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    edit_json(COCO_VAL, lambda d: d['images'][1].update(width=200))
    with pytest.raises(
            DataError,
            match=r'1 images of .*instances_val2017'
            r'.json differ in size .*000000000002\.jpg \(image '
            r'id 2\): the annotation says 200x128, the image is '
            r'160x128'):
        check_config_data(cfg, ('val', ))

    cfg = toy(tmp_path, monkeypatch, 'voc')
    ann_dir = 'data/toy/voc/VOCdevkit/VOC2007/Annotations/'
    xml = ann_dir + sorted(os.listdir(ann_dir))[0]
    text = open(xml).read().replace('<height>128', '<height>96')
    open(xml, 'w').write(text)
    with pytest.raises(
            DataError,
            match=rf'{osp.basename(xml)}\): its XML '
            rf'says 160x96, the image is 160x128'):
        check_config_data(cfg, ('train', 'val'))


def test_label_map_of_other_size_or_rgb(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'ade20k')
    seg_dir = ADE + 'annotations/validation/'
    seg = seg_dir + sorted(os.listdir(seg_dir))[1]
    label = np.asarray(Image.open(seg))
    Image.fromarray(label[:, :150]).save(seg)
    with pytest.raises(
            DataError,
            match=rf'{osp.basename(seg)}: 150x128 '
            rf'\(width x height\), its image .*\.jpg is '
            rf'160x128'):
        check_config_data(cfg, ('val', ))
    Image.fromarray(np.stack([label] * 3, -1)).save(seg)
    with pytest.raises(
            DataError,
            match=rf'{osp.basename(seg)}: 3 channels;'
            r' a label map has one'):
        check_config_data(cfg, ('val', ))


def test_degenerate_boxes_get_one_warning_with_counts(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')

    def degenerate(data):
        data['annotations'][0]['bbox'][2] = -5  # negative width
        data['annotations'][2]['bbox'][3] = 0  # zero height

    data = edit_json(COCO_TRAIN, degenerate)
    warnings = check_config_data(cfg, ('train', ))
    line, = [w for w in warnings if 'box mmdet drops' in w]
    ids = [data['annotations'][i]['id'] for i in (0, 2)]
    assert line.startswith(COCO_TRAIN + ': ')
    assert '2 annotations with a box' in line
    assert all(f'annotation {i} ' in line for i in ids), line


def test_class_name_typo(tmp_path, monkeypatch):
    classes = ('square', 'circle', 'Triangle')
    cfg = toy(tmp_path, monkeypatch, 'coco')
    cfg.train_dataloader.dataset.metainfo = dict(classes=classes)
    with pytest.raises(
            DataError,
            match=r"instances_train2017.json: "
            r"configured classes not among its categories: "
            r"'Triangle' \(did you mean 'triangle'\?\)"):
        check_config_data(cfg, ('train', ))

    cfg = toy(tmp_path, monkeypatch, 'voc')
    for d in cfg.train_dataloader.dataset.dataset.datasets:
        d.metainfo = dict(classes=classes)
    with pytest.raises(
            DataError,
            match=r"trainval.txt: configured classes "
            r"without any object, while objects of a similar "
            r"name are skipped: 'Triangle' \(did you mean "
            r"'triangle'\?\)"):
        check_config_data(cfg, ('train', ))


def test_voc_classes_subset_is_accepted(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'voc')
    for d in cfg.train_dataloader.dataset.dataset.datasets:
        d.metainfo = dict(classes=('square', 'circle'))
    warnings = check_config_data(cfg, ('train', ))
    assert any("x 'triangle'" in w and 'skipped' in w for w in warnings)


def test_second_check_reads_only_changed_files(tmp_path, monkeypatch):
    """Facts are cached by path, size and mtime: a second check of the
    same data reads no image or label; a rewritten file is read again."""
    cfg = toy(tmp_path, monkeypatch, 'ade20k')
    monkeypatch.setenv('DTL_MM_CACHE_DIR', str(tmp_path / 'cache'))
    reads = []
    real = data_check.label_facts
    monkeypatch.setattr(data_check, 'label_facts',
                        lambda p, b: reads.append(p) or real(p, b))
    check_config_data(cfg, ('train', 'val'))
    assert len(reads) == 6
    reads.clear()
    check_config_data(cfg, ('train', 'val'))
    assert reads == []
    seg_dir = ADE + 'annotations/validation/'
    seg = seg_dir + sorted(os.listdir(seg_dir))[0]
    label = np.asarray(Image.open(seg)).copy()
    label[0, 0] = 200
    Image.fromarray(label).save(seg)
    with pytest.raises(DataError, match=r'label values \[200\]'):
        check_config_data(cfg, ('train', 'val'))
    assert reads == [seg]


def test_data_check_runs_on_rank_0_only(monkeypatch):
    """The other ranks read nothing and stop with rank 0's verdict."""
    import mmengine.dist as mdist

    from dtl_mm.checks.data_check import check_data
    monkeypatch.setattr(mdist, 'get_rank', lambda: 1)
    monkeypatch.setattr(mdist, 'get_world_size', lambda: 2)
    monkeypatch.setattr(mdist, 'is_distributed', lambda: True)
    monkeypatch.setattr(
        mdist, 'broadcast_object_list',
        lambda objs, src: objs.__setitem__(0, 'DataError: x.jpg missing'))
    monkeypatch.setattr(data_check, 'check_config_data',
                        lambda *a: pytest.fail('rank 1 read the data'))
    cfg = Config(dict(launcher='pytorch'))
    with pytest.raises(
            DataError,
            match='the data check on rank 0 failed: '
            'DataError: x.jpg missing'):
        check_data(cfg, ('train', ))


@pytest.mark.slow
def test_distributed_run_stops_on_bad_data(tmp_path):
    MAKERS['voc'](str(tmp_path / 'data' / 'toy' / 'voc'), n_train=4, n_val=2)
    os.remove(tmp_path / 'data/toy/voc/VOCdevkit/VOC2007/JPEGImages/'
              '2007_test_000001.jpg')
    rc, out = dist_train(tmp_path, tmp_path / 'wd', *SHORT['voc'], timeout=300)
    assert rc != 0
    assert out.count('checking the train/val data files') == 1, out[-3000:]
    assert 'DataError' in out and '2007_test_000001.jpg' in out
    assert not (tmp_path / 'wd').exists()


# ------------------------------------------------------------- bad configs
def test_out_indices_must_match_neck(tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, DEMO['voc']))
    check_model_config(cfg)
    cfg.model.backbone.out_indices = (0, 1, 2)
    with pytest.raises(ValueError, match='neck.in_channels'):
        check_model_config(cfg)
    cfg = Config.fromfile(osp.join(ROOT, DEMO['ade20k']))
    cfg.model.decode_head.in_channels = [32, 64, 128]
    with pytest.raises(ValueError, match='decode_head.in_channels'):
        check_model_config(cfg)


def test_dtl_on_too_shallow_backbone():
    with pytest.raises(ValueError, match='`first_g_block`'):
        DTLSwinTransformer(variant='dtlv2', first_g_block=13, **TINY)


def test_swin_b_weights_into_swin_l_config(tmp_path):
    small = plain_swin()  # embed 32 stands in for Swin-B, 24 for Swin-L
    path = str(tmp_path / 'b.pth')
    torch.save({'state_dict': small.state_dict()}, path)
    model = DTLSwinTransformer(
        init_cfg=dict(type='Pretrained', checkpoint=path),
        **dict(TINY, embed_dims=24))
    with pytest.raises(
            CheckpointLayoutError,
            match=r'patch_embed.projection.weight: checkpoint '
            r'\(32, 3, 4, 4\) vs model \(24, 3, 4, 4\)'):
        model.init_weights()


# ------------------------------------------------------ checkpoint writing
def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, path)

    def crash(fd):  # the process dies after writing, before the rename
        raise KeyboardInterrupt('killed mid-save')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(
        load_checkpoint_file(path)['state_dict']['w'], torch.ones(3))
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temp file left
    assert isinstance(
        __import__('mmengine').fileio.get_file_backend(path),
        AtomicLocalBackend)


@pytest.mark.slow  # runs the tools as subprocesses
def test_killed_save_never_leaves_a_truncated_file(tmp_path, monkeypatch):
    path = tmp_path / 'big.pth'
    code = ('import dtl_mm, torch, sys\n'
            'from mmengine.runner.checkpoint import save_checkpoint\n'
            'print("go", flush=True)\n'
            'save_checkpoint({"w": torch.ones(120_000_000)}, '
            f'{str(path)!r})\n')
    proc = subprocess.Popen([sys.executable, '-c', code],
                            stdout=subprocess.PIPE,
                            text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.readline().strip() == 'go'
    deadline, writing = time.time() + 120, False
    try:  # wait until the write is under way
        while not writing and time.time() < deadline and \
                proc.poll() is None:
            writing = any(f.name.endswith('.tmp') for f in tmp_path.iterdir())
            time.sleep(0.005)
        assert writing, 'the temporary file of the save was never seen'
        assert not path.exists() and proc.poll() is None, \
            'the save ended before it could be killed'
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert not path.exists()  # whole or nothing: here nothing
    left = [f.name for f in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].endswith(
        f'.{proc.pid}@{atomic_io.HOST}.tmp')
    # the next writer into that folder removes what the dead one left
    monkeypatch.setattr(atomic_io, '_swept', set())
    save_checkpoint({'w': torch.ones(1)}, str(path))
    assert [f.name for f in tmp_path.iterdir()] == ['big.pth']


def test_checkpoint_mode_honours_the_umask(tmp_path):
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        old = os.umask(umask)
        try:
            path = tmp_path / f'epoch_{umask}.pth'
            save_checkpoint({'state_dict': {'w': torch.ones(1)}}, str(path))
        finally:
            os.umask(old)
        assert path.stat().st_mode & 0o777 == mode


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path, monkeypatch):
    dead = subprocess.Popen(['true'])
    dead.wait()
    names = {
        'dead': f'.epoch_1.pth.ab12.{dead.pid}@{atomic_io.HOST}.tmp',
        'alive': f'.epoch_2.pth.cd34.{os.getpid()}@{atomic_io.HOST}.tmp',
        'other_host': f'.epoch_3.pth.ef56.{dead.pid}@elsewhere.tmp',
        'not_ours': '.notes.tmp',
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b'partial')
    monkeypatch.setattr(atomic_io, '_swept', set())  # a new process
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'epoch_4.pth'))
    left = set(os.listdir(tmp_path))
    assert names['dead'] not in left
    assert {
        names['alive'], names['other_host'], names['not_ours'], 'epoch_4.pth'
    } == left


def test_disk_full_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    good = path.read_bytes()
    real_fdopen = os.fdopen

    def full_disk(fd, mode, **kw):  # the kernel's own ENOSPC
        os.close(fd)
        return real_fdopen(os.open('/dev/full', os.O_WRONLY), mode, **kw)

    monkeypatch.setattr(os, 'fdopen', full_disk)
    with pytest.raises(
            OSError,
            match=rf'no space left on the device while '
            rf'writing {path} \(\d+\.\d MiB\); the previous file'
            rf' .* is unchanged') as e:
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(path))
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_last_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    """mmengine's CheckpointHook writes it with open(..., 'w')."""
    from mmengine.hooks import checkpoint_hook
    last = tmp_path / 'last_checkpoint'
    with checkpoint_hook.open(str(last), 'w') as f:
        f.write('/runs/a/epoch_1.pth')

    def crash(fd):
        raise KeyboardInterrupt('killed mid-write')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        with checkpoint_hook.open(str(last), 'w') as f:
            f.write('/runs/a/epoch_2.pth')
    assert last.read_text() == '/runs/a/epoch_1.pth'
    assert os.listdir(tmp_path) == ['last_checkpoint']


# ------------------------------------------------ interruption and resume
@pytest.mark.slow
def test_killed_and_resumed_run_equals_straight_run(tmp_path):
    for name in ('voc', ):
        MAKERS[name](str(tmp_path / 'data' / 'toy' / name), n_train=8, n_val=2)
    opts = [
        '--cfg-options', 'train_cfg.max_epochs=2',
        'default_hooks.checkpoint.interval=1', 'randomness.seed=1',
        'train_dataloader.batch_size=2'
    ]
    cfg = osp.join(ROOT, DEMO['voc'])
    run_tool(tmp_path, tool('train.py'), cfg, '--work-dir', 'straight', *opts)

    killed = tmp_path / 'killed'
    proc = subprocess.Popen([
        sys.executable,
        tool('train.py'), cfg, '--work-dir',
        str(killed), *opts
    ],
                            cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline, saved = time.time() + 300, False
    while not saved and time.time() < deadline and proc.poll() is None:
        last = killed / 'last_checkpoint'
        saved = last.exists() and last.read_text().endswith('epoch_1.pth')
        time.sleep(0.05)
    try:
        assert saved, 'epoch 1 was not saved within 300 s'
        assert proc.poll() is None, 'the run ended before it could be killed'
    finally:
        proc.kill()
        proc.wait()
    assert not (killed / 'epoch_2.pth').exists()
    out = run_tool(tmp_path, tool('train.py'), cfg, '--work-dir', str(killed),
                   '--resume', *opts)
    assert 'resumed epoch: 1, iter: 4' in out

    a = torch.load(tmp_path / 'straight' / 'epoch_2.pth', weights_only=False)
    b = torch.load(killed / 'epoch_2.pth', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == 8
    trainable = [k for k in a['state_dict'] if 'swin.' not in k]
    assert trainable
    # CPU kernels are deterministic for a fixed thread count: exact equality
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k
    # the optimizer state too: AdamW's moments went on from epoch 1's
    state = a['optimizer']['state']
    assert state.keys() == b['optimizer']['state'].keys()
    for pid, s in state.items():
        for name in ('step', 'exp_avg', 'exp_avg_sq'):
            assert torch.equal(
                torch.as_tensor(s[name]),
                torch.as_tensor(b['optimizer']['state'][pid][name])), (pid,
                                                                       name)


@pytest.fixture
def voc_run(short_run):
    """The session's short VOC demo run (conftest.short_run): (config
    path, work dir); tests that change the work dir take a copy
    (own_copy)."""
    return osp.join(ROOT, DEMO['voc']), short_run('voc')


def own_copy(voc_run, tmp_path):
    cfg, src = voc_run
    wd = copy_run(src, tmp_path / 'wd')
    assert (wd / 'last_checkpoint').read_text() == str(wd / 'epoch_1.pth')
    return cfg, wd


def test_resume_without_checkpoint_says_so(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(resume, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    for wd in (tmp_path / 'typo', tmp_path / 'empty'):
        os.makedirs(tmp_path / 'empty', exist_ok=True)
        cfg = Config(dict(work_dir=str(wd), load_from='detector.pth'))
        resume.resume_from(cfg, 'auto')
        assert cfg.resume is False and cfg.load_from == 'detector.pth'
    out = '\n'.join(logged)
    assert f'the work dir {tmp_path / "typo"} does not exist); training ' \
        f'starts from scratch' in out
    assert f'no epoch_*.pth / iter_*.pth in {tmp_path / "empty"}); ' \
        f'training starts from scratch' in out
    with pytest.raises(
            FileNotFoundError, match='--resume: checkpoint not '
            'found: nope.pth'):
        resume.resume_from(cfg, 'nope.pth')


def test_empty_or_dangling_last_checkpoint(tmp_path):
    wd = tmp_path / 'wd'
    wd.mkdir()
    last = wd / 'last_checkpoint'
    last.write_text('')
    assert latest_checkpoint(str(wd)) == (
        None, f'{last} is empty and no epoch_*.pth / iter_*.pth in {wd}')
    for n in (1, 2):
        save_checkpoint({'state_dict': {}}, str(wd / f'epoch_{n}.pth'))
        time.sleep(0.01)
    path, note = latest_checkpoint(str(wd))
    assert path == str(wd / 'epoch_2.pth')
    assert note == f'{last} is empty; the newest checkpoint file is used'
    last.write_text('/gone/epoch_7.pth')
    path, note = latest_checkpoint(str(wd))
    assert path == str(wd / 'epoch_2.pth') and 'names /gone/epoch_7.pth, ' \
        'which does not exist' in note
    last.write_text('/moved/epoch_1.pth')  # the work dir was moved
    assert latest_checkpoint(str(wd))[0] == str(wd / 'epoch_1.pth')


@pytest.mark.slow
def test_resume_from_another_models_checkpoint(voc_run, tmp_path):
    cfg, wd = own_copy(voc_run, tmp_path)
    ckpt = torch.load(wd / 'epoch_1.pth', weights_only=False)
    sd = ckpt['state_dict']
    # a segmentor's weights where the detector's head was
    ckpt['state_dict'] = {
        k.replace('bbox_head.', 'decode_head.'): v
        for k, v in sd.items()
    }
    other = tmp_path / 'upernet_epoch_4.pth'
    torch.save(ckpt, other)
    good = (wd / 'epoch_1.pth').read_bytes()
    proc = subprocess.run([
        sys.executable,
        tool('train.py'), cfg, '--work-dir',
        str(wd), '--resume',
        str(other), '--cfg-options', 'train_cfg.max_epochs=2'
    ],
                          cwd=voc_run[1].parent,
                          capture_output=True,
                          text=True,
                          timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert f'{other} does not fit this model' in proc.stderr
    assert 'decode_head.' in proc.stderr
    assert 'weight(s) of the model are missing' in proc.stderr
    assert 'different number of parameter groups' not in proc.stderr
    assert (wd / 'epoch_1.pth').read_bytes() == good
    assert (wd / 'last_checkpoint').read_text() == str(wd / 'epoch_1.pth')


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_last_good_checkpoint(voc_run, tmp_path):
    cfg, wd = own_copy(voc_run, tmp_path)
    good = (wd / 'epoch_1.pth').read_bytes()
    proc = subprocess.run([
        sys.executable,
        tool('train.py'), cfg, '--work-dir',
        str(wd), '--resume', '--cfg-options', 'train_cfg.max_epochs=2',
        'model.bbox_head.loss_cls.loss_weight=nan'
    ],
                          cwd=voc_run[1].parent,
                          capture_output=True,
                          text=True,
                          timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    # plain SGD-style training: the NaN reaches the weights at once, so
    # there is no waiting for more non-finite losses
    assert 'non-finite loss (nan) at iteration 3 (epoch 2), and' in \
        proc.stderr and 'trainable weights are now non-finite' in proc.stderr
    assert 'epoch_1.pth' in proc.stderr.split('non-finite loss')[1]
    assert not (wd / 'epoch_2.pth').exists()
    assert (wd / 'last_checkpoint').read_text().endswith('epoch_1.pth')
    assert (wd / 'epoch_1.pth').read_bytes() == good


class FakeRunner:
    """What the guard hooks read of a runner."""

    def __init__(self, work_dir, model):
        self.work_dir, self.model = str(work_dir), model
        self.iter, self.epoch, self.warnings = 0, 0, []
        self.logger = type(
            'L', (), {
                'warning': lambda _, m: self.warnings.append(m),
                'info': lambda _, m: self.warnings.append(m)
            })()

    def step(self, hook, loss):
        hook.after_train_iter(self, 0, outputs=dict(loss=torch.tensor(loss)))
        self.iter += 1


def test_nonfinite_loss_tolerates_skipped_steps(tmp_path):
    """Under AMP the loss scaler skips an overflowing step and the weights
    stay good: K non-finite losses in a row stop training, fewer do not."""
    model = torch.nn.Linear(2, 2)
    save_checkpoint({'state_dict': model.state_dict()},
                    str(tmp_path / 'epoch_1.pth'))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    hook, runner = NonFiniteLossHook(max_consecutive=3), FakeRunner(
        tmp_path, model)
    for loss in (1., float('inf'), float('nan'), 1., float('inf'),
                 float('inf')):
        runner.step(hook, loss)
    assert len(runner.warnings) == 4
    assert runner.warnings[1] == (
        'non-finite loss (nan) at iteration 3 (epoch 1): step skipped, the '
        'weights are still finite (2 of 3 in a row stop training)')
    with pytest.raises(
            FloatingPointError,
            match=r'non-finite loss \(inf\) '
            r'at iteration 7 \(epoch 1\), 3 iterations in a '
            r'row; training stopped. Last good checkpoint: ' +
            re.escape(str(tmp_path / 'epoch_1.pth')) + '$'):
        runner.step(hook, float('inf'))


def test_nonfinite_weights_stop_at_once_and_are_never_saved(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_checkpoint({'state_dict': model.state_dict()},
                    str(tmp_path / 'epoch_1.pth'))
    time.sleep(0.01)
    hook, runner = NonFiniteLossHook(), FakeRunner(tmp_path, model)
    with torch.no_grad():
        model.bias[1] = float('nan')
    # the loss lags the weights by a step: this save happens while the
    # loss still looks fine, and is refused
    with pytest.raises(
            FloatingPointError,
            match=r"refusing to save a "
            r"checkpoint at iteration 0: 1 trainable weights are"
            r" non-finite \(e.g. \['bias'\]\)"):
        hook.before_save_checkpoint(runner, {})
    # a checkpoint of blown-up weights (saved without the hook) is not
    # called good
    save_checkpoint({'state_dict': model.state_dict()},
                    str(tmp_path / 'epoch_2.pth'))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    with pytest.raises(FloatingPointError) as e:
        runner.step(hook, float('nan'))
    assert 'trainable weights are now non-finite' in str(e.value)
    assert f'Last good checkpoint: {tmp_path / "epoch_1.pth"}; newer ' \
        f'checkpoints with non-finite weights (do not resume from them): ' \
        f"['{tmp_path / 'epoch_2.pth'}']" in str(e.value)


def test_rank_consistency_every_n_iterations(tmp_path, monkeypatch):
    import mmengine.dist as mdist
    gathered = []
    monkeypatch.setattr(mdist, 'get_world_size', lambda: 2)
    monkeypatch.setattr(mdist, 'all_gather',
                        lambda t: gathered.append(t) or [t, t.clone()])
    hook = RankConsistencyHook(interval=3)
    runner = FakeRunner(tmp_path, torch.nn.Linear(2, 2))
    for _ in range(7):
        runner.step(hook, 1.)
    hook.after_train_epoch(runner)
    assert runner.warnings == [
        'trainable weights identical on all 2 ranks after iteration 3',
        'trainable weights identical on all 2 ranks after iteration 6',
        'trainable weights identical on all 2 ranks after epoch 1'
    ]
    monkeypatch.setattr(mdist, 'all_gather', lambda t: [t, t + 1e-7])
    with pytest.raises(
            RuntimeError,
            match='trainable weights differ '
            'between ranks after iteration 9'):
        for _ in range(3):
            runner.step(hook, 1.)


def test_distributed_timeout_is_configurable(monkeypatch):
    from dtl_mm.apis.runner_setup import dist_timeout
    monkeypatch.delenv('DTL_MM_DIST_TIMEOUT', raising=False)
    assert dist_timeout(Config()) == 1800
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(timeout=600))))
    assert dist_timeout(cfg) == 600
    monkeypatch.setenv('DTL_MM_DIST_TIMEOUT', '120')
    assert dist_timeout(cfg) == 120
    monkeypatch.setenv('DTL_MM_DIST_TIMEOUT', 'soon')
    with pytest.raises(ValueError, match='DTL_MM_DIST_TIMEOUT'):
        dist_timeout(cfg)
    readme = open(osp.join(ROOT, 'README.md')).read()
    assert 'DTL_MM_DIST_TIMEOUT' in readme


# ------------------------------------------------ checkpoints at test time
@pytest.mark.slow
def test_checkpoint_without_frozen_backbone_is_refused(voc_run, tmp_path):
    cfg, wd = voc_run
    full = torch.load(wd / 'epoch_1.pth', weights_only=False)
    sd = full['state_dict']
    lean = {k: v for k, v in sd.items() if '.swin.' not in k}
    torch.save({
        'state_dict': lean,
        'meta': full['meta']
    }, tmp_path / 'lean.pth')
    proc = subprocess.run(
        [sys.executable,
         tool('test.py'), cfg,
         str(tmp_path / 'lean.pth')],
        cwd=wd.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert 'lacks' in proc.stderr and 'Swin backbone weights' in \
        proc.stderr and '--backbone-from-pretrained' in proc.stderr

    # the remedy it names: the frozen Swin from the pretrained file
    swin = {
        k[len('backbone.'):]: v
        for k, v in sd.items() if k.startswith('backbone.swin.')
    }
    torch.save({'state_dict': swin}, tmp_path / 'swin.pth')
    out = run_tool(wd.parent, tool('test.py'), cfg, str(tmp_path / 'lean.pth'),
                   '--backbone-from-pretrained', str(tmp_path / 'swin.pth'))
    assert 'pascal_voc/mAP' in out


# ------------------------------------------------------------ distributed
@pytest.mark.slow
def test_killing_one_rank_ends_the_others(tmp_path):
    MAKERS['voc'](str(tmp_path / 'data' / 'toy' / 'voc'), n_train=8, n_val=2)
    wd = tmp_path / 'wd'
    proc = subprocess.Popen(
        dist_cmd(wd, 'train_cfg.max_epochs=50',
                 'train_dataloader.batch_size=1',
                 'default_hooks.logger.interval=1'),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=dist_env(DTL_MM_DIST_TIMEOUT='60'))

    def workers():
        """torchrun's worker processes (each in a session of its own)."""
        out = subprocess.run(['pgrep', '-P', str(proc.pid)],
                             capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    ranks = []
    try:
        deadline = time.time() + 300
        victim = None
        while time.time() < deadline and victim is None:
            logs = list(wd.glob('*/*.log'))
            if logs and 'Epoch(train)' in logs[0].read_text():
                victim = next(
                    (p for p in workers()
                     if 'LOCAL_RANK=1\0' in open(f'/proc/{p}/environ').read()),
                    None)
            time.sleep(0.2)
        assert victim, 'rank 1 never started training'
        ranks = workers()
        os.kill(victim, signal.SIGKILL)
        try:
            out, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail('180 s after rank 1 was killed the launcher still '
                        'ran: the other rank was not ended')
        assert proc.returncode != 0, out[-3000:]
    finally:
        ranks = ranks or workers()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(1)
        alive = [p for p in ranks if osp.exists(f'/proc/{p}')]
        for p in alive:  # leave no strays behind, whatever happened
            os.kill(p, signal.SIGKILL)
    assert not alive, 'a rank outlived the launcher'
