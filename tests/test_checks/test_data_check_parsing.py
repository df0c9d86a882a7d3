"""The data check reads each data set through its own library (mmdet's /
mmseg's dataset classes, built from the config without a pipeline), and
names the file and what was expected when the library cannot read it.

Toy data sets in the real formats (``dtl_mm.testing.toy_data``), broken
the way real ones are."""
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config

from dtl_mm.checks.data_check import DataError, check_config_data
from dtl_mm.testing.toy_data import MAKERS
from helpers.tool_utils import DEMO, ROOT

COCO_TRAIN = 'data/toy/coco/annotations/instances_train2017.json'
COCO_VAL = 'data/toy/coco/annotations/instances_val2017.json'
VOC07 = 'data/toy/voc/VOCdevkit/VOC2007/'


def toy(tmp_path, monkeypatch, name):
    """Toy data of one task under tmp_path (the working folder: the demo
    configs name data/toy/... relative paths) and its demo config; the
    data check's cache in a folder of this test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('DTL_MM_CACHE_DIR', str(tmp_path / 'cache'))
    MAKERS[name](str(tmp_path / 'data' / 'toy' / name), n_train=4, n_val=2)
    return Config.fromfile(osp.join(ROOT, DEMO[name]))


def edit_json(path, change):
    with open(path) as f:
        data = json.load(f)
    change(data)
    with open(path, 'w') as f:
        json.dump(data, f)
    return data


def first_xml():
    """The XML of the first image VOC2007's trainval list names."""
    with open(VOC07 + 'ImageSets/Main/trainval.txt') as f:
        return VOC07 + 'Annotations/' + f.readline().strip() + '.xml'


# ------------------------------------------ what the libraries cannot read
def test_missing_annotation_file_is_named(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    os.remove(COCO_VAL)
    with pytest.raises(
            DataError,
            match=r'annotation file not found: .*instances_val2017\.json'):
        check_config_data(cfg, ('val', ))


def test_coco_annotation_mmdet_cannot_parse(tmp_path, monkeypatch):
    """A bbox of three numbers stops mmdet's parse_data_info with a bare
    ValueError; the check names the file, the annotation and the format."""
    cfg = toy(tmp_path, monkeypatch, 'coco')
    data = edit_json(COCO_TRAIN, lambda d: d['annotations'][1]['bbox'].pop())
    ann_id = data['annotations'][1]['id']
    with pytest.raises(
            DataError,
            match=rf'instances_train2017\.json: 1 broken annotations: '
            rf'annotation {ann_id}: ValueError: .*"bbox": \[x, y, width, '
            rf'height\]'):
        check_config_data(cfg, ('train', ))


def test_coco_image_entry_without_size(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    edit_json(COCO_VAL, lambda d: d['images'][0].pop('width'))
    with pytest.raises(
            DataError,
            match=r"instances_val2017\.json: image 1 has no 'width' "
            r'\(COCO needs id, file_name, width, height\)'):
        check_config_data(cfg, ('val', ))


def test_duplicate_annotation_ids_named_by_mmdet(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    edit_json(
        COCO_VAL,
        lambda d: d['annotations'][1].update(id=d['annotations'][0]['id']))
    with pytest.raises(
            DataError,
            match=r'instances_val2017\.json: CocoDataset cannot load it '
            r'\(AssertionError: Annotation ids in .* are not unique!\)'):
        check_config_data(cfg, ('val', ))


def test_voc_image_id_without_xml_names_the_line(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'voc')
    xml = first_xml()
    os.remove(xml)
    img_id = osp.basename(xml)[:-4]
    with pytest.raises(
            DataError,
            match=rf'trainval\.txt, line 1: {img_id} has no annotation file '
            rf'.*{img_id}\.xml'):
        check_config_data(cfg, ('train', ))


def test_voc_object_without_box(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'voc')
    xml = first_xml()
    with open(xml) as f:
        text = f.read()
    start, end = text.index('<bndbox>'), text.index('</bndbox>') + 9
    with open(xml, 'w') as f:
        f.write(text[:start] + text[end:])
    with pytest.raises(
            DataError,
            match=rf'{osp.basename(xml)}: mmdet cannot read it '
            rf'\(AttributeError: .*a <bndbox> with numbers xmin, ymin, '
            rf'xmax, ymax'):
        check_config_data(cfg, ('train', ))


def test_segmentation_image_folder_missing(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'ade20k')
    cfg.val_dataloader.dataset.data_prefix.img_path = 'images/valid'
    with pytest.raises(
            DataError, match=r'image folder not found: .*images/valid'):
        check_config_data(cfg, ('val', ))


def test_unknown_dataset_type(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    cfg.val_dataloader.dataset.type = 'CocoDatset'
    with pytest.raises(
            DataError,
            match=r"unknown dataset type 'CocoDatset' \(not in the mmdet "
            r'dataset registry\)'):
        check_config_data(cfg, ('val', ))


# ------------------------------------- the data list is the library's own
def test_images_left_out_by_filter_cfg_are_not_read(tmp_path, monkeypatch):
    """filter_empty_gt drops an image without annotations from what trains:
    its missing file does not matter, and the count says it was left out.
    Evaluated (test_mode, no filter), the same image is refused."""
    cfg = toy(tmp_path, monkeypatch, 'coco')
    for path in (COCO_TRAIN, COCO_VAL):
        edit_json(
            path, lambda d: d.update(annotations=[
                a for a in d['annotations'] if a['image_id'] != 2
            ]))
    os.remove('data/toy/coco/train2017/000000000002.jpg')
    counted = []
    check_config_data(cfg, ('train', ), counted)
    line, = counted
    assert 'instances_train2017.json: 3 images (1 left out by filter_cfg)' \
        in line, line
    os.remove('data/toy/coco/val2017/000000000002.jpg')
    with pytest.raises(DataError, match=r'missing.*000000000002\.jpg'):
        check_config_data(cfg, ('val', ))


def test_pipeline_is_not_built(tmp_path, monkeypatch):
    """Only the data list is checked: a transform the check's process has
    no registration for does not stop it."""
    cfg = toy(tmp_path, monkeypatch, 'ade20k')
    cfg.val_dataloader.dataset.pipeline.append(dict(type='NotRegistered'))
    check_config_data(cfg, ('val', ))


def test_counts_per_leaf_dataset_of_wrappers(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'voc')
    counted = []
    check_config_data(cfg, ('train', 'val'), counted)
    assert [line.split(' ')[:2]
            for line in counted] == [['train:', 'VOCDataset'],
                                     ['train:', 'VOCDataset'],
                                     ['val:', 'VOCDataset']], counted
    assert all('objects of 3 classes' in line for line in counted), counted


def test_unchanged_voc_files_are_not_parsed_again(tmp_path, monkeypatch):
    """What was learnt from the image list and its XML files is reused
    while none of them changed (size and mtime): an XML rewritten with
    broken content but the same size and mtime goes unread; touched, it is
    read again and refused."""
    cfg = toy(tmp_path, monkeypatch, 'voc')
    check_config_data(cfg, ('train', ))
    xml = first_xml()
    st = os.stat(xml)
    with open(xml, 'rb') as f:
        size = len(f.read())
    with open(xml, 'wb') as f:
        f.write(b'<' * size)
    os.utime(xml, ns=(st.st_atime_ns, st.st_mtime_ns))
    check_config_data(cfg, ('train', ))
    os.utime(xml)
    with pytest.raises(DataError, match=osp.basename(xml) + ': not valid XML'):
        check_config_data(cfg, ('train', ))
