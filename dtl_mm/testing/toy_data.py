"""A small, deterministic, learnable data set in the real on-disk formats.

Coloured shapes (square, circle, triangle) on a noisy background, with boxes,
instance masks (as COCO polygons) and per-pixel labels, written as
- COCO:   annotations/instances_{train,val}2017.json + {train,val}2017/*.jpg
- VOC:    VOCdevkit/VOC{2007,2012}/{JPEGImages,Annotations,ImageSets/Main}
- ADE20K: ADEChallengeData2016/{images,annotations}/{training,validation}
          (label 0 = unlabelled, ignored; the ground and the three shapes
          carry the label values of ADE20K's 'floor', 'box', 'ball' and
          'signboard', so the 150-class dataset and metric read them as is)
so that mmdet's CocoDataset / VOCDataset and mmseg's ADE20KDataset read them
unchanged.
"""
import json
import os
import os.path as osp
from xml.etree import ElementTree as ET

import cv2
import numpy as np

CLASSES = ('square', 'circle', 'triangle')
# ADE20K classes standing in for ground, square, circle, triangle
ADE_STAND_INS = ('floor', 'box', 'ball', 'signboard')
# BGR colours, far apart so that a small model can learn them quickly
COLOURS = ((40, 40, 220), (40, 200, 40), (220, 60, 40))


def _polygon(kind, cx, cy, r, rng):
    if kind == 0:  # square
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r),
               (cx - r, cy + r)]
    elif kind == 1:  # circle, 24-gon
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        pts = list(zip(cx + r * np.cos(t), cy + r * np.sin(t)))
    else:  # triangle with a random rotation
        a = rng.uniform(0, 2 * np.pi)
        t = a + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
        pts = list(zip(cx + r * np.cos(t), cy + r * np.sin(t)))
    return np.round(np.array(pts, dtype=np.float64)).astype(np.int32)


def make_sample(rng, size):
    """One image (H, W, 3 uint8 BGR) and its objects [(class, polygon)]."""
    h, w = size
    img = rng.integers(90, 150, size=(h, w, 3), dtype=np.uint8)
    objects, occupied = [], np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 4))):
        for _try in range(20):
            r = int(rng.integers(max(6, min(h, w) // 10), min(h, w) // 4))
            cx = int(rng.integers(r + 1, w - r - 1))
            cy = int(rng.integers(r + 1, h - r - 1))
            if not occupied[max(cy - r - 2, 0):cy + r + 3,
                            max(cx - r - 2, 0):cx + r + 3].any():
                break
        else:
            continue
        kind = int(rng.integers(0, len(CLASSES)))
        poly = _polygon(kind, cx, cy, r, rng)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [poly], 1)
        if mask.sum() < 16:
            continue
        occupied |= mask.astype(bool)
        colour = np.array(COLOURS[kind]) + rng.integers(-20, 21, size=3)
        img[mask.astype(bool)] = np.clip(colour, 0, 255)
        objects.append((kind, poly, mask))
    return img, objects


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1  # x1 y1 x2 y2


def coco_instance(anns, image_id, category_id, bbox, area, polygon):
    """Appends a COCO instance annotation to ``anns``: ``bbox`` x y w h,
    one polygon ``[x1, y1, x2, y2, ...]``, ids counted from 1."""
    anns.append(
        dict(
            id=len(anns) + 1,
            image_id=image_id,
            category_id=category_id,
            bbox=list(bbox),
            area=area,
            iscrowd=0,
            segmentation=[list(polygon)]))


def write_coco(path, images, anns, classes, **category_fields):
    """A COCO instances file: ``classes`` are categories 1..K (with
    ``category_fields``, e.g. a supercategory, on each)."""
    cats = [
        dict(id=k + 1, name=c, **category_fields)
        for k, c in enumerate(classes)
    ]
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)


def _samples(n, size, seed):
    rng = np.random.default_rng(seed)
    return [make_sample(rng, size) for _ in range(n)]


def make_coco(root, n_train=64, n_val=16, size=(128, 160), seed=0):
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, n, s in (('train2017', n_train, seed), ('val2017', n_val,
                                                       seed + 1)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, anns = [], []
        for i, (img, objects) in enumerate(_samples(n, size, s), start=1):
            name = f'{i:012d}.jpg'
            cv2.imwrite(
                osp.join(root, split, name), img,
                [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(
                dict(id=i, file_name=name, height=size[0], width=size[1]))
            for kind, poly, mask in objects:
                x1, y1, x2, y2 = _bbox(mask)
                coco_instance(
                    anns, i, kind + 1,
                    [int(x1), int(y1),
                     int(x2 - x1),
                     int(y2 - y1)], int(mask.sum()),
                    poly.reshape(-1).astype(float).tolist())
        write_coco(
            osp.join(root, 'annotations', f'instances_{split}.json'),
            images,
            anns,
            CLASSES,
            supercategory='shape')
    return root


def _voc_xml(name, size, objects):
    ann = ET.Element('annotation')
    ET.SubElement(ann, 'filename').text = name
    sz = ET.SubElement(ann, 'size')
    for tag, v in (('width', size[1]), ('height', size[0]), ('depth', 3)):
        ET.SubElement(sz, tag).text = str(v)
    for kind, _, mask in objects:
        x1, y1, x2, y2 = _bbox(mask)
        obj = ET.SubElement(ann, 'object')
        ET.SubElement(obj, 'name').text = CLASSES[kind]
        ET.SubElement(obj, 'pose').text = 'Unspecified'
        ET.SubElement(obj, 'truncated').text = '0'
        ET.SubElement(obj, 'difficult').text = '0'
        box = ET.SubElement(obj, 'bndbox')
        # VOC boxes are 1-based and inclusive
        for tag, v in (('xmin', x1 + 1), ('ymin', y1 + 1), ('xmax', x2),
                       ('ymax', y2)):
            ET.SubElement(box, tag).text = str(int(v))
    return ET.ElementTree(ann)


def make_voc(root, n_train=64, n_val=16, size=(128, 160), seed=0):
    """VOC2007 trainval + test and VOC2012 trainval under root/VOCdevkit."""
    splits = (('VOC2007', 'trainval', n_train // 2, seed), ('VOC2007', 'test',
                                                            n_val, seed + 1),
              ('VOC2012', 'trainval', n_train - n_train // 2, seed + 2))
    for year, split, n, s in splits:
        base = osp.join(root, 'VOCdevkit', year)
        for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
            os.makedirs(osp.join(base, sub), exist_ok=True)
        ids = []
        for i, (img, objects) in enumerate(_samples(n, size, s)):
            img_id = f'{year[3:]}_{split}_{i:06d}'
            ids.append(img_id)
            cv2.imwrite(
                osp.join(base, 'JPEGImages', img_id + '.jpg'), img,
                [cv2.IMWRITE_JPEG_QUALITY, 95])
            _voc_xml(img_id + '.jpg', size, objects).write(
                osp.join(base, 'Annotations', img_id + '.xml'))
        with open(osp.join(base, 'ImageSets/Main', split + '.txt'), 'w') as f:
            f.write('\n'.join(ids) + '\n')
    return osp.join(root, 'VOCdevkit')


def ade_label_values():
    """On-disk label values (ADE20K index + 1, 0 = unlabelled)."""
    from mmseg.datasets import ADE20KDataset
    names = ADE20KDataset.METAINFO['classes']
    return [names.index(n) + 1 for n in ADE_STAND_INS]


def make_ade20k(root, n_train=64, n_val=16, size=(128, 160), seed=0):
    base = osp.join(root, 'ADEChallengeData2016')
    ground, *shapes = ade_label_values()
    for split, n, s in (('training', n_train, seed), ('validation', n_val,
                                                      seed + 1)):
        os.makedirs(osp.join(base, 'images', split), exist_ok=True)
        os.makedirs(osp.join(base, 'annotations', split), exist_ok=True)
        for i, (img, objects) in enumerate(_samples(n, size, s), start=1):
            name = f'ADE_{split[:5]}_{i:08d}'
            label = np.full(size, ground, np.uint8)
            for kind, poly, mask in objects:
                # a 1-pixel unlabelled (0, ignored) rim, as ADE20K has
                cv2.polylines(label, [poly], True, 0, 1)
                label[cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0] = \
                    shapes[kind]
            cv2.imwrite(
                osp.join(base, 'images', split, name + '.jpg'), img,
                [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(
                osp.join(base, 'annotations', split, name + '.png'), label)
    return base


MAKERS = dict(coco=make_coco, voc=make_voc, ade20k=make_ade20k)
