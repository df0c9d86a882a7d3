"""How long the pre-flight data check takes, first run and cached.

Writes a COCO-like train set (N small JPEGs, COCO's 80 categories, about 7
polygon annotations per image as in COCO train2017) and an ADE20K-like set
(M 512x512 label PNGs), times ``check_config_data`` on each without a cache
and again with it, and extrapolates linearly to COCO train2017 (118,287
images, 860,001 annotations) and ADE20K (20,210 training images).

    python tools/benchmarks/preflight_speed.py --images 10000 --labels 1000

The files are read back from the page cache (just written), as on a machine
where the data was read before; a cold network file system is slower.
"""
import argparse
import os
import os.path as osp
import tempfile
import time

import numpy as np
from mmengine.config import Config
from PIL import Image

import dtl_mm  # noqa: F401  (registers the datasets' scopes)
from dtl_mm.checks.data_check import check_config_data
from dtl_mm.testing.toy_data import coco_instance, write_coco

COCO_IMAGES, ADE_IMAGES = 118287, 20210


def make_coco(root, n, rng):
    from mmdet.datasets import CocoDataset
    names = CocoDataset.METAINFO['classes']
    os.makedirs(osp.join(root, 'train2017'))
    pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    images, anns = [], []
    for i in range(1, n + 1):
        name = f'{i:012d}.jpg'
        Image.fromarray(pixels).save(osp.join(root, 'train2017', name))
        images.append(dict(id=i, file_name=name, width=64, height=48))
        for _ in range(7):
            x, y = rng.uniform(0, 40, 2).round(2).tolist()
            poly = (np.array([x, y] * 12) + rng.uniform(0, 20, 24)).round(2)
            coco_instance(anns, i, int(rng.integers(1, 81)),
                          [x, y, 20.0, 20.0], 400.0, poly.tolist())
    write_coco(
        osp.join(root, 'annotations', 'train.json'), images, anns, names)
    return Config(
        dict(
            default_scope='mmdet',
            train_dataloader=dict(
                dataset=dict(
                    type='CocoDataset',
                    data_root=root,
                    ann_file='annotations/train.json',
                    data_prefix=dict(img='train2017/')))))


def make_ade(root, n, rng):
    for sub in ('images', 'annotations'):
        os.makedirs(osp.join(root, sub))
    label = rng.integers(0, 151, (512, 512), dtype=np.uint8)
    label[:, 256:] = 1  # part flat, as real label maps compress
    img = Image.fromarray(rng.integers(0, 255, (512, 512, 3), np.uint8))
    for i in range(n):
        img.save(osp.join(root, 'images', f'{i:08d}.jpg'))
        Image.fromarray(np.roll(label, i, 0)).save(
            osp.join(root, 'annotations', f'{i:08d}.png'))
    return Config(
        dict(
            default_scope='mmseg',
            train_dataloader=dict(
                dataset=dict(
                    type='ADE20KDataset',
                    data_root=root,
                    data_prefix=dict(
                        img_path='images', seg_map_path='annotations')))))


def timed(cfg):
    t = time.perf_counter()
    check_config_data(cfg, ('train', ))
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        '--images',
        type=int,
        default=10000,
        help='COCO-like images to generate')
    p.add_argument(
        '--labels',
        type=int,
        default=1000,
        help='ADE20K-like 512x512 label maps to generate')
    args = p.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ['DTL_MM_CACHE_DIR'] = osp.join(tmp, 'cache')
        for name, make, n, full in (('COCO-like', make_coco, args.images,
                                     COCO_IMAGES), ('ADE20K-like', make_ade,
                                                    args.labels, ADE_IMAGES)):
            t = time.perf_counter()
            cfg = make(osp.join(tmp, name), n, rng)
            made = time.perf_counter() - t
            first, second = timed(cfg), timed(cfg)
            rows.append((name, n, made, first, second, full, first * full / n,
                         second * full / n))
    print(f'{"data set":12} {"files":>7} {"write s":>8} {"check s":>8} '
          f'{"cached s":>8} | {"full":>7} {"check s":>8} {"cached s":>8}')
    for name, n, made, first, second, full, ffirst, fsecond in rows:
        print(f'{name:12} {n:7d} {made:8.1f} {first:8.2f} {second:8.2f} | '
              f'{full:7d} {ffirst:8.1f} {fsecond:8.1f}')
    print(f'(cpu count {os.cpu_count()}; "full": linear extrapolation to '
          f'COCO train2017 / ADE20K training)')


if __name__ == '__main__':
    main()
