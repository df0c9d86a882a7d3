"""The data check: bad data is refused before training, naming the file or
field; legal oddities get one warning with counts."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from dtl_mm.checks import data_check, segmentation_check
from dtl_mm.checks.data_check import DataError, check_config_data
from helpers.tool_utils import DEMO


# ---------------------------------------------------------------- bad data
def test_clean_toy_data_passes(toy):
    for name in DEMO:
        check_config_data(toy(name), ('train', 'val', 'test'))


def _missing_image():
    os.remove('data/toy/coco/train2017/000000000002.jpg')


def _annotation_file_not_json():
    ann = 'data/toy/coco/annotations/instances_val2017.json'
    open(ann, 'w').write('{"images": [')


def _unknown_category():
    ann = 'data/toy/coco/annotations/instances_train2017.json'
    data = json.load(open(ann))
    data['annotations'][0]['category_id'] = 99
    json.dump(data, open(ann, 'w'))


@pytest.mark.parametrize('task, edit, match, splits', [
    pytest.param(
        'coco',
        _missing_image,
        r'missing.*000000000002\.jpg', ('train', ),
        id='missing_image'),
    pytest.param(
        'coco',
        _annotation_file_not_json, 'instances_val2017.json: not valid '
        'JSON', ('val', ),
        id='annotation_file_not_json'),
    pytest.param(
        'coco',
        _unknown_category,
        'unknown category_id 99', ('train', ),
        id='unknown_category'),
])
def test_bad_file_is_named(toy, task, edit, match, splits):
    """One edit of the toy data (a case per former test_<case id>); the
    check names the file and what is wrong."""
    cfg = toy(task)
    edit()
    with pytest.raises(DataError, match=match):
        check_config_data(cfg, splits)


def test_voc_xml_broken_and_unknown_class(toy):
    cfg = toy('voc')
    ann_dir = 'data/toy/voc/VOCdevkit/VOC2012/Annotations/'
    # the file with the most objects, so that objects and classes differ
    xml = max((ann_dir + f for f in sorted(os.listdir(ann_dir))),
              key=lambda f: open(f).read().count('<object>'))
    good = open(xml).read()
    # objects of other classes are skipped by mmdet (a classes subset):
    # legal, so a warning with counts
    open(xml, 'w').write(
        good.replace('<name>square', '<name>hexagon').replace(
            '<name>circle', '<name>hexagon').replace('<name>triangle',
                                                     '<name>hexagon'))
    n_objects = good.count('<object>')
    assert n_objects > 1
    warnings = check_config_data(cfg, ('train', ))
    # counted in objects (all of this file's), not in classes (one)
    assert any(f"{n_objects} objects of classes not configured, skipped, "
               f"e.g. {n_objects} x 'hexagon'" in w
               for w in warnings), warnings
    open(xml, 'w').write(good[:len(good) // 2])
    with pytest.raises(
            DataError, match=osp.basename(xml) + ': not valid '
            'XML'):
        check_config_data(cfg, ('train', ))


def test_segmentation_label_out_of_range(toy):
    cfg = toy('ade20k')
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


# ----------------------------------- broken data the check used to miss
COCO_TRAIN = 'data/toy/coco/annotations/instances_train2017.json'

COCO_VAL = 'data/toy/coco/annotations/instances_val2017.json'

ADE = 'data/toy/ade20k/ADEChallengeData2016/'


def edit_json(path, change):
    data = json.load(open(path))
    change(data)
    json.dump(data, open(path, 'w'))
    return data


def test_non_utf8_file_names_are_checked_without_crashing(toy):
    """An ADE20K image and label named with a Latin-1 byte: mmseg trains on
    them, so the check passes, and a problem in them is named legibly."""
    cfg = toy('ade20k')
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


def test_latin1_bytes_in_annotation_files(toy):
    cfg = toy('coco')
    raw = open(COCO_VAL, 'rb').read()
    open(COCO_VAL, 'wb').write(raw.replace(b'"shape"', b'"caf\xe9"', 1))
    with pytest.raises(
            DataError,
            match=r'instances_val2017.json: not '
            r'UTF-8 text: byte 0xe9 at line 1, column \d+'):
        check_config_data(cfg, ('val', ))

    cfg = toy('voc')
    lst = 'data/toy/voc/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt'
    lines = open(lst, 'rb').read().split(b'\n')
    lines[1] += b'\xe9'
    open(lst, 'wb').write(b'\n'.join(lines))
    with pytest.raises(
            DataError,
            match=r'trainval.txt: not UTF-8 text: '
            r'byte 0xe9 at line 2'):
        check_config_data(cfg, ('train', ))


def test_polygon_of_fewer_than_3_points(toy):
    cfg = toy('coco')

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


def test_empty_annotations_and_test_dev(toy):
    cfg = toy('coco')
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


def test_image_size_differs_from_annotation(toy):
    cfg = toy('coco')
    edit_json(COCO_VAL, lambda d: d['images'][1].update(width=200))
    with pytest.raises(
            DataError,
            match=r'1 images of .*instances_val2017'
            r'.json differ in size .*000000000002\.jpg \(image '
            r'id 2\): the annotation says 200x128, the image is '
            r'160x128'):
        check_config_data(cfg, ('val', ))

    cfg = toy('voc')
    ann_dir = 'data/toy/voc/VOCdevkit/VOC2007/Annotations/'
    xml = ann_dir + sorted(os.listdir(ann_dir))[0]
    text = open(xml).read().replace('<height>128', '<height>96')
    open(xml, 'w').write(text)
    with pytest.raises(
            DataError,
            match=rf'{osp.basename(xml)}\): its XML '
            rf'says 160x96, the image is 160x128'):
        check_config_data(cfg, ('train', 'val'))


def test_label_map_of_other_size_or_rgb(toy):
    cfg = toy('ade20k')
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


def test_degenerate_boxes_get_one_warning_with_counts(toy):
    cfg = toy('coco')

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


def test_class_name_typo(toy):
    classes = ('square', 'circle', 'Triangle')
    cfg = toy('coco')
    cfg.train_dataloader.dataset.metainfo = dict(classes=classes)
    with pytest.raises(
            DataError,
            match=r"instances_train2017.json: "
            r"configured classes not among its categories: "
            r"'Triangle' \(did you mean 'triangle'\?\)"):
        check_config_data(cfg, ('train', ))

    cfg = toy('voc')
    for d in cfg.train_dataloader.dataset.dataset.datasets:
        d.metainfo = dict(classes=classes)
    with pytest.raises(
            DataError,
            match=r"trainval.txt: configured classes "
            r"without any object, while objects of a similar "
            r"name are skipped: 'Triangle' \(did you mean "
            r"'triangle'\?\)"):
        check_config_data(cfg, ('train', ))


def test_voc_classes_subset_is_accepted(toy):
    cfg = toy('voc')
    for d in cfg.train_dataloader.dataset.dataset.datasets:
        d.metainfo = dict(classes=('square', 'circle'))
    warnings = check_config_data(cfg, ('train', ))
    assert any("x 'triangle'" in w and 'skipped' in w for w in warnings)


def test_second_check_reads_only_changed_files(toy, tmp_path, monkeypatch):
    """Facts are cached by path, size and mtime: a second check of the
    same data reads no image or label; a rewritten file is read again."""
    cfg = toy('ade20k')
    monkeypatch.setenv('DTL_MM_CACHE_DIR', str(tmp_path / 'cache'))
    reads = []
    real = segmentation_check.label_facts
    monkeypatch.setattr(segmentation_check, "label_facts",
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
