"""Pre-flight checks of the data a config points at, before any training.

mmdet / mmseg datasets fail late or not at all on broken data: a JSON/XML
parse error without the file's name, annotations of unknown categories
dropped silently, a missing image found hours into an epoch, label values
past the class range that only crash the loss. These checks read the raw
files the dataset classes will read and raise ``DataError`` naming the file.
"""
import inspect
import json
import os
import os.path as osp
from xml.etree import ElementTree as ET

import cv2
import numpy as np

WRAPPERS = ('RepeatDataset', 'ConcatDataset', 'ClassBalancedDataset',
            'MultiImageMixDataset')


class DataError(ValueError):
    """Broken or inconsistent data; the message names the file."""


def leaf_datasets(cfg):
    """The real dataset configs inside Repeat/Concat/... wrappers."""
    if cfg.get('type') in WRAPPERS:
        inner = cfg.get('datasets') or [cfg['dataset']]
        return [leaf for d in inner for leaf in leaf_datasets(d)]
    return [cfg]


def _join(cfg, *parts):
    parts = [p for p in parts if p]
    path = osp.join(*parts) if parts else ''
    root = cfg.get('data_root') or ''
    return path if osp.isabs(path) else osp.join(root, path)


def _registry_class(cfg, scope):
    if scope == 'mmdet':
        from mmdet.registry import DATASETS
    else:
        from mmseg.registry import DATASETS
    cls = DATASETS.get(cfg['type'])
    if cls is None:
        raise DataError(f'unknown dataset type {cfg["type"]!r}')
    return cls


def _classes(cfg, cls):
    meta = cfg.get('metainfo') or {}
    return tuple(meta.get('classes') or cls.METAINFO['classes'])


def _missing_images(paths, what):
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise DataError(f'{len(missing)} of {len(paths)} image files listed '
                        f'by {what} are missing, e.g. {missing[:3]}')


def check_coco(cfg, cls):
    ann_file = _join(cfg, cfg['ann_file'])
    if not osp.isfile(ann_file):
        raise DataError(f'annotation file not found: {ann_file}')
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f'{ann_file}: not valid JSON ({e})') from None
    for key in ('images', 'annotations', 'categories'):
        if key not in data:
            raise DataError(f'{ann_file}: no "{key}" list (not a COCO '
                            f'annotation file)')
    cat_ids = {c['id'] for c in data['categories']}
    names = {c['name'] for c in data['categories']}
    wanted = set(_classes(cfg, cls))
    if not wanted & names:
        raise DataError(f'{ann_file}: none of the configured classes '
                        f'{sorted(wanted)[:5]}... is among its categories '
                        f'{sorted(names)[:5]}')
    for ann in data['annotations']:
        if ann.get('category_id') not in cat_ids:
            raise DataError(
                f'{ann_file}: annotation {ann.get("id")} refers to unknown '
                f'category_id {ann.get("category_id")} (categories: '
                f'{sorted(cat_ids)})')
    img_dir = _join(cfg, (cfg.get('data_prefix') or {}).get('img', ''))
    _missing_images([osp.join(img_dir, im['file_name'])
                     for im in data['images']], ann_file)


def check_voc(cfg, cls):
    list_file = _join(cfg, cfg['ann_file'])
    if not osp.isfile(list_file):
        raise DataError(f'image list not found: {list_file}')
    sub = _join(cfg, (cfg.get('data_prefix') or {}).get('sub_data_root', ''))
    classes = set(_classes(cfg, cls))
    images = []
    with open(list_file) as f:
        ids = [ln.strip() for ln in f if ln.strip()]
    for img_id in ids:
        xml = osp.join(sub, 'Annotations', img_id + '.xml')
        if not osp.isfile(xml):
            raise DataError(f'{list_file} lists {img_id} but {xml} is '
                            f'missing')
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as e:
            raise DataError(f'{xml}: not valid XML ({e})') from None
        for obj in root.findall('object'):
            name = obj.findtext('name')
            if name not in classes:
                raise DataError(f'{xml}: object of unknown class {name!r} '
                                f'(classes: {sorted(classes)})')
        images.append(osp.join(sub, 'JPEGImages', img_id + '.jpg'))
    _missing_images(images, list_file)


def check_segmentation(cfg, cls):
    prefix = cfg.get('data_prefix') or {}
    img_dir = _join(cfg, prefix.get('img_path', ''))
    seg_dir = _join(cfg, prefix.get('seg_map_path', ''))
    params = inspect.signature(cls.__init__).parameters
    img_suffix = cfg.get('img_suffix', params['img_suffix'].default)
    seg_suffix = cfg.get('seg_map_suffix', params['seg_map_suffix'].default)
    reduce_zero = cfg.get('reduce_zero_label',
                          params['reduce_zero_label'].default)
    if not osp.isdir(img_dir):
        raise DataError(f'image folder not found: {img_dir}')
    names = sorted(f[:-len(img_suffix)] for f in os.listdir(img_dir)
                   if f.endswith(img_suffix))
    if not names:
        raise DataError(f'no *{img_suffix} images in {img_dir}')
    num_classes = len(_classes(cfg, cls))
    # stored values: 0..C-1 (or 1..C with 0 = unlabelled when labels are
    # reduced by one), plus the ignore value 255
    valid = set(range(1, num_classes + 1)) | {0} if reduce_zero else \
        set(range(num_classes))
    valid.add(255)
    for name in names:
        seg = osp.join(seg_dir, name + seg_suffix)
        label = cv2.imread(seg, cv2.IMREAD_UNCHANGED)
        if label is None:
            raise DataError(f'label map missing or unreadable: {seg} (for '
                            f'{osp.join(img_dir, name + img_suffix)})')
        bad = set(np.unique(label).tolist()) - valid
        if bad:
            expected = (f'0 (unlabelled), 1..{num_classes}' if reduce_zero
                        else f'0..{num_classes - 1}')
            raise DataError(f'{seg}: label values {sorted(bad)[:8]} outside '
                            f'the {num_classes} classes (expected '
                            f'{expected}, or 255 = ignore)')


def check_dataset(cfg, scope):
    for leaf in leaf_datasets(cfg):
        cls = _registry_class(leaf, scope)
        from mmdet.datasets import CocoDataset, XMLDataset
        if scope == 'mmdet' and issubclass(cls, CocoDataset):
            check_coco(leaf, cls)
        elif scope == 'mmdet' and issubclass(cls, XMLDataset):
            check_voc(leaf, cls)
        elif scope == 'mmseg':
            check_segmentation(leaf, cls)


def check_config_data(cfg, splits=('train', 'val')):
    """Checks the datasets of the given dataloaders of a runner config."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader:
            check_dataset(loader['dataset'], cfg.default_scope)


SWIN_TYPES = ('SwinTransformer', 'PretrainedSwinTransformer',
              'DTLSwinTransformer', 'LoRASwinTransformer',
              'AdapterSwinTransformer', 'AdaptFormerSwinTransformer')


def check_model_config(cfg):
    """The backbone's outputs must be what the neck / heads expect; a
    mismatch otherwise surfaces as a shape error deep in the first forward.
    """
    model = cfg.model
    bb = model.get('backbone') or {}
    if bb.get('type') not in SWIN_TYPES:
        return
    depths = bb.get('depths', (2, 2, 6, 2))
    out_indices = tuple(bb.get('out_indices', (0, 1, 2, 3)))
    if any(not 0 <= i < len(depths) for i in out_indices):
        raise ValueError(f'model.backbone.out_indices={out_indices}: the '
                         f'Swin has stages 0..{len(depths) - 1}')
    embed = bb.get('embed_dims', 96)
    chans = [embed * 2**i for i in out_indices]
    for name in ('neck', 'decode_head'):
        part = model.get(name)
        if isinstance(part, dict) and isinstance(
                part.get('in_channels'), (list, tuple)):
            index = part.get('in_index', list(range(len(chans))))
            index = index if isinstance(index, (list, tuple)) else [index]
            got, want = list(part['in_channels']), [
                chans[i] if i < len(chans) else None for i in index]
            if got != want:
                raise ValueError(
                    f'model.{name}.in_channels={got} does not match the '
                    f'backbone outputs: out_indices={out_indices} with '
                    f'embed_dims={embed} give {chans}')
    aux = model.get('auxiliary_head')
    if isinstance(aux, dict) and isinstance(aux.get('in_channels'), int):
        i = aux.get('in_index', -1)
        if not -len(chans) <= i < len(chans) or aux['in_channels'] != chans[i]:
            raise ValueError(
                f'model.auxiliary_head.in_channels={aux["in_channels"]} '
                f'(in_index={i}) does not match the backbone outputs {chans}')
