"""The COCO check: mmdet's ``CocoDataset`` reads the annotation file; its
structure, the boxes and polygons and the images against it are checked."""

from .dataset_access import (check_annotated, config_key, detection_digest,
                             load_data_list, typo_hint)
from .file_facts import DataError, show, some_of


# ------------------------------------------------------------------ COCO
def rle_size(segm):
    """[height, width] an RLE mask says it has."""
    return list(segm.get('size', ()))


def _coco_structure(data, ann_file):
    """The parts of a COCO file pycocotools and mmdet index by."""
    if not isinstance(data, dict):
        raise DataError(f'{show(ann_file)}: not a COCO annotation file (a '
                        f'JSON {type(data).__name__}, not an object)')
    for key in ('images', 'categories'):
        if not isinstance(data.get(key), list):
            raise DataError(f'{show(ann_file)}: no "{key}" list (not a COCO '
                            f'annotation file)')
    for kind, entries, keys in (('category', data['categories'],
                                 ('id', 'name')), ('image', data['images'],
                                                   ('id', 'file_name', 'width',
                                                    'height'))):
        for entry in entries:
            absent = [k for k in keys if k not in entry]
            if absent:
                raise DataError(f'{show(ann_file)}: {kind} '
                                f'{entry.get("id")} has no {absent[0]!r} '
                                f'(COCO needs {", ".join(keys)})')


def coco_digest(ds, role, format_only):
    """Loads a CocoDataset with mmdet's ``load_data_list``; returns (what
    the check reports about it, the files read). Raises ``DataError`` for
    what is broken."""
    ann_file = ds.ann_file
    seen, parsed = {}, []
    make_index, parse = ds.COCOAPI, ds.parse_data_info

    def keep_index(path):
        seen['coco'] = make_index(path)
        return seen['coco']

    def parse_each(raw):
        """mmdet's parse of one image, and which of its annotations mmdet
        kept (parsed one at a time where it dropped some): the dropped
        ones are named by id, which the parsed instances no longer carry.
        An annotation mmdet cannot read is noted, and the image parsed
        without it, so that every broken one is named at once."""
        anns = raw['raw_ann_info']
        try:
            info = parse(raw)
            if len(info['instances']) == len(anns):
                parsed.append((raw, [True] * len(anns), []))
                return info
        except Exception:
            info = None
        img = raw['raw_img_info']
        try:
            parse(dict(raw, raw_ann_info=[]))
        except Exception as e:
            _coco_structure(seen['coco'].dataset, ann_file)
            raise DataError(f'{show(ann_file)}: image {img.get("id")} '
                            f'cannot be read by mmdet ({type(e).__name__}: '
                            f'{e})') from e
        kept, broken = [], []
        for ann in anns:
            try:
                kept.append(
                    bool(parse(dict(raw, raw_ann_info=[ann]))['instances']))
            except Exception as e:
                kept.append(False)
                broken.append(f'annotation {ann.get("id")}: '
                              f'{type(e).__name__}: {e} (COCO needs "bbox":'
                              f' [x, y, width, height], "area" and '
                              f'"category_id"; bbox {ann.get("bbox")!r})')
        if info is None:
            info = parse(
                dict(raw, raw_ann_info=[a for a, k in zip(anns, kept) if k]))
        parsed.append((raw, kept, broken))
        return info

    # instance attributes shadow the class's methods for this object only:
    # mmdet's load_data_list calls them, so its own index of the file and
    # its parse of each image are seen here, the file read once
    ds.COCOAPI, ds.parse_data_info = keep_index, parse_each
    data_list = load_data_list(
        ds, ann_file, 'annotation file', 'a COCO annotation file (a JSON '
        'object with "images", "annotations" and "categories")', lambda: 'coco'
        in seen and _coco_structure(seen['coco'].dataset, ann_file))
    coco = seen['coco']
    data = coco.dataset
    _coco_structure(data, ann_file)
    classes = tuple(ds.metainfo['classes'])
    anns = data.get('annotations')
    if not anns:
        state = 'an empty "annotations" list' if isinstance(
            anns, list) else 'no "annotations"'
        if role == 'train':
            raise DataError(f'{show(ann_file)}: {state}: nothing to train on')
        if not format_only:
            raise DataError(
                f'{show(ann_file)}: {state}, so the evaluation has no ground '
                f'truth. For an image list without labels (e.g. COCO '
                f'test-dev) set format_only=True in the evaluator')
        anns = []
    names = {c['name'] for c in data['categories']}
    absent = [c for c in classes if c not in names]
    if absent:
        hints = ', '.join(repr(c) + typo_hint(c, names) for c in absent)
        raise DataError(f'{show(ann_file)}: configured classes not among its '
                        f'categories: {hints}; categories: '
                        f'{sorted(names)[:10]}')
    # mmdet numbers the classes in the file's order of its categories
    # (cat_ids), whatever the config's order, and names label i classes[i]
    order = [coco.cats[i]['name'] for i in ds.cat_ids]
    if order != list(classes):
        raise DataError(f'{show(ann_file)}: the configured classes are '
                        f'{list(classes)}, its categories list them as '
                        f'{order}: mmdet numbers them in the file\'s order, '
                        f'so predictions would get the wrong names; '
                        f'configure classes={tuple(order)}')

    # mmdet skips annotations of an unknown image or category silently
    broken = [
        f'annotation {a.get("id")}: unknown image_id {a.get("image_id")}'
        for a in anns if a.get('image_id') not in coco.imgs
    ] + [
        f'annotation {a.get("id")} refers to unknown category_id '
        f'{a.get("category_id")} (categories: {sorted(coco.cats)})'
        for a in anns if a.get('category_id') not in coco.cats
    ]
    wanted = set(ds.cat_ids)
    degenerate, bad_polys = [], []
    for raw, kept, unreadable in parsed:
        broken += unreadable
        img = raw['raw_img_info']
        for ann, keep in zip(raw['raw_ann_info'], kept):
            if not keep:
                # a configured class, yet dropped by mmdet's parse
                if ann.get('category_id') in wanted and isinstance(
                        ann.get('bbox'), list):
                    degenerate.append(f'annotation {ann.get("id")} '
                                      f'(bbox {ann["bbox"]})')
                continue
            segm = ann.get('segmentation')
            if isinstance(segm, list) and any(
                    not isinstance(p, list) or len(p) < 6 or len(p) % 2
                    for p in segm):
                shortest = min(
                    len(p) if isinstance(p, list) else 0 for p in segm)
                bad_polys.append(f'annotation {ann.get("id")} (image '
                                 f'{img["file_name"]}): a polygon of '
                                 f'{shortest} coordinates')
            elif isinstance(
                    segm,
                    dict) and rle_size(segm) != [img['height'], img['width']]:
                broken.append(f'annotation {ann.get("id")}: RLE mask size '
                              f'{segm.get("size")} is not the image\'s '
                              f'[height, width] [{img["height"]}, '
                              f'{img["width"]}]')
    if broken:
        raise DataError(f'{show(ann_file)}: {len(broken)} broken '
                        f'annotations: {some_of(broken)}')
    warnings = [('annotations with a box mmdet drops (width or height < 1,'
                 ' zero area, or outside the image)', degenerate)]
    if bad_polys and role != 'train':
        raise DataError(
            f'{show(ann_file)}: {len(bad_polys)} annotations have a polygon '
            f'of fewer than 3 points (or an odd number of coordinates), '
            f'which the COCO mask evaluation cannot read: '
            f'{some_of(bad_polys)}')
    warnings.append(('annotations with a polygon of fewer than 3 points, '
                     'which mmdet ignores whole (box included)', bad_polys))
    per_class = dict.fromkeys(classes, 0)
    for info in data_list:
        for inst in info['instances']:
            per_class[classes[inst['bbox_label']]] += 1
    if role == 'train':
        if anns and not any(per_class.values()):
            raise DataError(f'{show(ann_file)}: no usable annotation of the '
                            f'configured classes {list(classes)}: nothing '
                            f'to train on')
        warnings.append(('configured classes without any instance',
                         [c for c, n in per_class.items() if n == 0]))
    images = [(d['img_path'], [d['width'],
                               d['height']], f'image id {d["img_id"]}')
              for d in data_list]
    return detection_digest(ds, parsed, images, warnings, per_class,
                            classes), [ann_file]


def check_coco(ds, cfg, role, facts, warnings, evaluator=None):
    evaluators = evaluator if isinstance(evaluator,
                                         (list, tuple)) else [evaluator or {}]
    format_only = any(e.get('format_only') for e in evaluators)
    return check_annotated(
        'coco',
        ds.ann_file,
        'annotation file',
        lambda p: coco_digest(ds, role, format_only),
        config_key(cfg, role, format_only),
        facts,
        warnings,
        where='the annotation',
        objects='annotations')
