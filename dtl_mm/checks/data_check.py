"""Pre-flight checks of the data a config points at, before any training.

mmdet / mmseg datasets fail late or not at all on broken data: a JSON/XML
parse error without the file's name, annotations dropped silently, an image
whose size is not the one its boxes refer to, a missing image found hours
into an epoch, label maps that only crash the evaluation. These checks read
the raw files the dataset classes will read and raise ``DataError`` naming
the file (and the annotation / line); data that is legal but suspicious
(degenerate boxes mmdet drops, a class without instances) gets one summary
warning with counts.

Sizes come from image headers (no decoding); label maps are decoded, since
their values are checked. What is learnt about a file is cached on disk,
keyed by its path, size and modification time (``FileFacts``), so checking
unchanged data again reads nothing but the annotation files' ``stat``.
"""
import difflib
import hashlib
import inspect
import json
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree as ET

import numpy as np
from mmengine.logging import print_log
from PIL import Image

WRAPPERS = ('RepeatDataset', 'ConcatDataset', 'ClassBalancedDataset',
            'MultiImageMixDataset')
EXAMPLES = 5  # offending items named per error / warning
EXIF_ORIENTATION = 0x0112


class DataError(ValueError):
    """Broken or inconsistent data; the message names the file."""


def show(path):
    """A path as text, also when its name is not valid UTF-8 (``os``
    functions hand such names back with surrogate escapes, which cannot be
    printed or logged)."""
    return os.fsencode(path).decode('utf-8', 'backslashreplace')


def _some(items):
    items = list(items)
    more = f' (and {len(items) - EXAMPLES} more)' if len(
        items) > EXAMPLES else ''
    return '; '.join(str(i) for i in items[:EXAMPLES]) + more


def read_text(path):
    """A text file's content; not UTF-8 is a ``DataError`` naming the line
    (mmengine and pycocotools read these files as UTF-8 too)."""
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as e:
        line = raw.count(b'\n', 0, e.start) + 1
        col = e.start - (raw.rfind(b'\n', 0, e.start) + 1) + 1
        raise DataError(
            f'{show(path)}: not UTF-8 text: byte 0x{raw[e.start]:02x} at '
            f'line {line}, column {col} (re-save the file as UTF-8)') from None


# ------------------------------------------------------------ file facts
def image_header(path):
    """(width, height) as the loaders (mmcv with OpenCV, which applies the
    EXIF orientation) will see it, and the stored (width, height), from the
    header only."""
    with Image.open(path) as img:
        w, h = img.size
        orient = 1
        if img.format in ('JPEG', 'MPO') and 'exif' in img.info:
            orient = img.getexif().get(EXIF_ORIENTATION, 1)
    return ((h, w) if orient in (5, 6, 7, 8) else (w, h)), (w, h)


def label_facts(path, backend='pillow'):
    """(width, height, channels, sorted label values) of a label map, decoded
    as mmseg's LoadAnnotations decodes it."""
    if backend == 'pillow':
        with Image.open(path) as img:
            label = np.asarray(img)
    else:
        import cv2

        # cv2.imread cannot take every file name (non-UTF-8 names crash
        # it): decode the bytes, as mmcv does
        with open(path, 'rb') as f:
            buf = np.frombuffer(f.read(), np.uint8)
        label = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if label is None:
            raise ValueError('not an image OpenCV can decode')
    channels = 1 if label.ndim == 2 else label.shape[2]
    if channels == 1 and label.dtype == np.uint8:
        values = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    else:
        values = np.unique(label)
    return label.shape[1], label.shape[0], channels, values.tolist()


def voc_facts(path):
    """The parts of a VOC XML file mmdet's VOCDataset reads: the size and
    the objects as (name, box or None when not four numbers)."""
    root = ET.parse(path).getroot()
    size = root.find('size')
    wh = None
    if size is not None:
        wh = [
            int(float(size.findtext('width'))),
            int(float(size.findtext('height')))
        ]
    objects = []
    for obj in root.findall('object'):
        box = obj.find('bndbox')
        try:
            xyxy = [
                int(float(box.findtext(t)))  # as mmdet reads them
                for t in ('xmin', 'ymin', 'xmax', 'ymax')
            ]
        except (AttributeError, TypeError, ValueError):
            xyxy = None
        objects.append([obj.findtext('name'), xyxy])
    return dict(size=wh, objects=objects)


def cache_dir():
    return os.environ.get('DTL_MM_CACHE_DIR') or osp.join(
        os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache'),
        'dtl_mm')


class FileFacts:
    """What was learnt about each file, kept on disk between runs.

    An entry is reused only while the file has the same size and
    modification time, so facts are never stale; verdicts are always
    recomputed from the facts. ``DTL_MM_CACHE_DIR`` moves the cache (set it
    to an empty folder to start afresh).
    """

    def __init__(self, name):
        self.path = osp.join(cache_dir(), f'preflight-{name}.json')
        self.entries, self.dirty = {}, False
        try:
            with open(self.path) as f:
                self.entries = json.load(f)
        except (OSError, ValueError):
            pass  # no cache yet, or an unreadable one: start afresh

    def _key(self, kind, path, extra):
        st = os.stat(path)
        return (f'{kind}:{show(osp.abspath(path))}:{extra}',
                [st.st_size, st.st_mtime_ns])

    def get(self, kind, path, compute, extra=''):
        key, stamp = self._key(kind, path, extra)
        hit = self.entries.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = compute(path)
        self.entries[key] = [stamp, value]
        self.dirty = True
        return value

    def many(self, kind, paths, compute, extra=''):
        """``get`` for many files; the misses are read by a few threads (the
        decoders release the GIL, and on network file systems the reads
        overlap). A file that cannot be read gives its exception."""
        results = [None] * len(paths)
        todo = []
        for i, p in enumerate(paths):
            try:
                key, stamp = self._key(kind, p, extra)
            except OSError as e:
                results[i] = e
                continue
            hit = self.entries.get(key)
            if hit is not None and hit[0] == stamp:
                results[i] = hit[1]
            else:
                todo.append((i, key, stamp))

        def read(item):
            try:
                return compute(paths[item[0]])
            except Exception as e:  # reported by the caller, with the file
                return e

        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            for (i, key, stamp), value in zip(todo, pool.map(read, todo)):
                results[i] = value
                if not isinstance(value, Exception):
                    self.entries[key] = [stamp, value]
                    self.dirty = True
        return results

    def save(self):
        if not self.dirty:
            return
        from ..checkpoint.atomic_io import atomic_write
        try:
            atomic_write(json.dumps(self.entries), self.path, 'w', 'utf-8')
        except OSError as e:  # a cache must never stop a run
            print_log(
                f'data check cache not written ({e})',
                logger='current',
                level=30)


# --------------------------------------------------------- shared helpers
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


def _default(cfg, cls, name):
    if name in cfg:
        return cfg[name]
    return inspect.signature(cls.__init__).parameters[name].default


def _typo_hint(name, candidates):
    """'did you mean ...' for a class name that matches no category."""
    lower = {c.lower(): c for c in candidates}
    near = [lower[name.lower()]] if name.lower() in lower else \
        difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f' (did you mean {near[0]!r}?)' if near else ''


class Report:
    """Warnings of one dataset, each logged once as a summary with counts."""

    def __init__(self, source):
        self.source = source
        self.lines = []

    def add(self, what, items):
        items = list(items)
        if items:
            self.lines.append(f'{len(items)} {what}, e.g. {_some(items)}')

    def log(self, collected=None):
        for line in self.lines:
            line = f'{self.source}: {line}'
            print_log(f'data check: {line}', logger='current', level=30)
            if collected is not None:
                collected.append(line)


def check_images(paths_sizes, source, facts, report, size_what):
    """Every listed image exists, can be read, and is as large as its
    annotation says. ``paths_sizes``: (path, (w, h) or None, id text)."""
    paths = [p for p, _, _ in paths_sizes]
    headers = facts.many('image', paths, image_header)
    missing = [
        show(p) for p, got in zip(paths, headers)
        if isinstance(got, FileNotFoundError)
    ]
    if missing:
        raise DataError(f'{len(missing)} of {len(paths)} image files listed '
                        f'by {show(source)} are missing, e.g. {missing[:3]}')
    unreadable, wrong, rotated = [], [], []
    for (path, wh, ident), got in zip(paths_sizes, headers):
        if isinstance(got, Exception):
            unreadable.append(f'{show(path)} ({got})')
            continue
        loaded, stored = (tuple(s) for s in got)
        if wh is None or tuple(wh) == loaded:
            continue
        if tuple(wh) == stored:
            rotated.append(show(path))
        else:
            wrong.append(f'{show(path)} ({ident}): {size_what} says '
                         f'{wh[0]}x{wh[1]}, the image is '
                         f'{loaded[0]}x{loaded[1]}')
    if unreadable:
        raise DataError(f'{len(unreadable)} images listed by {show(source)} '
                        f'cannot be read: {_some(unreadable)}')
    if wrong:
        raise DataError(f'{len(wrong)} images of {show(source)} differ in '
                        f'size (width x height) from their annotation, so '
                        f'its boxes / masks would refer to other pixels: '
                        f'{_some(wrong)}')
    report.add(
        'images whose EXIF orientation rotates them on loading, '
        'while their annotation gives the stored size (their boxes '
        'are used on the rotated image)', rotated)


# ------------------------------------------------------------------ COCO
def rle_size(segm):
    """[height, width] an RLE mask says it has."""
    return list(segm.get('size', ()))


def _coco_digest(ann_file, classes, role, format_only):
    """Reads a COCO file: (images as (file_name, (w, h), id text), warning
    lines as (what, items)); raises ``DataError`` for what is broken."""
    try:
        data = json.loads(read_text(ann_file))
    except json.JSONDecodeError as e:
        raise DataError(f'{show(ann_file)}: not valid JSON ({e})') from None
    if not isinstance(data, dict):
        raise DataError(f'{show(ann_file)}: not a COCO annotation file (a '
                        f'JSON {type(data).__name__}, not an object)')
    for key in ('images', 'categories'):
        if not isinstance(data.get(key), list):
            raise DataError(f'{show(ann_file)}: no "{key}" list (not a COCO '
                            f'annotation file)')
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
    try:
        cat_names = {c['id']: c['name'] for c in data['categories']}
        images = {im['id']: im for im in data['images']}
    except (KeyError, TypeError) as e:
        raise DataError(f'{show(ann_file)}: a category or image entry '
                        f'without {e} (COCO needs "id" and "name" / '
                        f'"file_name")') from None
    names = set(cat_names.values())
    absent = [c for c in classes if c not in names]
    if absent:
        hints = ', '.join(repr(c) + _typo_hint(c, names) for c in absent)
        raise DataError(f'{show(ann_file)}: configured classes not among its '
                        f'categories: {hints}; categories: '
                        f'{sorted(names)[:10]}')
    # mmdet numbers the classes in the file's order of its categories,
    # whatever the config's order, and names label i by classes[i]
    order = [c['name'] for c in data['categories'] if c['name'] in classes]
    if order != list(classes):
        raise DataError(f'{show(ann_file)}: the configured classes are '
                        f'{list(classes)}, its categories list them as '
                        f'{order}: mmdet numbers them in the file\'s order, '
                        f'so predictions would get the wrong names; '
                        f'configure classes={tuple(order)}')
    wanted = {i for i, n in cat_names.items() if n in classes}

    broken, degenerate, bad_polys = [], [], []
    per_class = dict.fromkeys(classes, 0)
    for ann in anns:
        aid = ann.get('id')
        img = images.get(ann.get('image_id'))
        if img is None:
            broken.append(f'annotation {aid}: unknown image_id '
                          f'{ann.get("image_id")}')
            continue
        if ann.get('category_id') not in cat_names:
            broken.append(f'annotation {aid} refers to unknown category_id '
                          f'{ann.get("category_id")} (categories: '
                          f'{sorted(cat_names)})')
            continue
        box = ann.get('bbox')
        if not (isinstance(box, list) and len(box) == 4
                and all(isinstance(v, (int, float)) for v in box)):
            broken.append(f'annotation {aid}: bbox {box!r} is not '
                          f'[x, y, width, height]')
            continue
        if ann['category_id'] not in wanted:
            continue  # mmdet skips classes not configured: a subset
        # what mmdet's CocoDataset drops, in its order
        x, y, w, h = box
        inter_w = max(0, min(x + w, img.get('width', 0)) - max(x, 0))
        inter_h = max(0, min(y + h, img.get('height', 0)) - max(y, 0))
        if inter_w * inter_h == 0 or ann.get('area', 1) <= 0 or w < 1 \
                or h < 1:
            degenerate.append(f'annotation {aid} (bbox {box})')
            continue
        segm = ann.get('segmentation')
        if isinstance(segm, list) and any(
                len(p) < 6 or len(p) % 2 for p in segm):
            bad_polys.append(f'annotation {aid} (image {img["file_name"]}): '
                             f'a polygon of {min(len(p) for p in segm)} '
                             f'coordinates')
        elif isinstance(segm, dict) and rle_size(segm) != [
                img.get('height'), img.get('width')
        ]:
            broken.append(f'annotation {aid}: RLE mask size '
                          f'{segm.get("size")} is not the image\'s '
                          f'[height, width] [{img.get("height")}, '
                          f'{img.get("width")}]')
        per_class[cat_names[ann['category_id']]] += 1
    if broken:
        raise DataError(f'{show(ann_file)}: {len(broken)} broken '
                        f'annotations: {_some(broken)}')
    warnings = [('annotations with a box mmdet drops (width or height < 1,'
                 ' zero area, or outside the image)', degenerate)]
    if bad_polys and role != 'train':
        raise DataError(
            f'{show(ann_file)}: {len(bad_polys)} annotations have a polygon '
            f'of fewer than 3 points (or an odd number of coordinates), '
            f'which the COCO mask evaluation cannot read: '
            f'{_some(bad_polys)}')
    warnings.append(('annotations with a polygon of fewer than 3 points, '
                     'which mmdet ignores whole (box included)', bad_polys))
    if role == 'train':
        if anns and not any(per_class.values()):
            raise DataError(f'{show(ann_file)}: no usable annotation of the '
                            f'configured classes {list(classes)}: nothing '
                            f'to train on')
        warnings.append(('configured classes without any instance',
                         [c for c, n in per_class.items() if n == 0]))
    listed = []
    for im in images.values():
        try:
            listed.append(
                (im['file_name'], [im['width'],
                                   im['height']], f'image id {im["id"]}'))
        except KeyError as e:
            raise DataError(f'{show(ann_file)}: image {im.get("id")} has no '
                            f'{e}') from None
    return dict(
        images=listed, warnings=warnings, objects=sum(per_class.values()))


def check_coco(cfg, cls, role, facts, warnings, evaluator=None):
    ann_file = _join(cfg, cfg['ann_file'])
    if not osp.isfile(ann_file):
        raise DataError(f'annotation file not found: {show(ann_file)}')
    classes = _classes(cfg, cls)
    evaluators = evaluator if isinstance(evaluator,
                                         (list, tuple)) else [evaluator or {}]
    format_only = any(e.get('format_only') for e in evaluators)
    digest = facts.get(
        'coco',
        ann_file,
        lambda p: _coco_digest(p, classes, role, format_only),
        extra=json.dumps([classes, role, format_only]))
    report = Report(show(ann_file))
    for what, items in digest['warnings']:
        report.add(what, items)
    img_dir = _join(cfg, (cfg.get('data_prefix') or {}).get('img', ''))
    check_images([(osp.join(img_dir, name), wh, ident)
                  for name, wh, ident in digest['images']], ann_file, facts,
                 report, 'the annotation')
    report.log(warnings)
    # (a digest cached by an older version has no count)
    objects = digest.get('objects', '?')
    return (f'{show(ann_file)}: {len(digest["images"])} images, {objects} '
            f'annotations of {len(classes)} classes')


# ------------------------------------------------------------------- VOC
def check_voc(cfg, cls, role, facts, warnings):
    list_file = _join(cfg, cfg['ann_file'])
    if not osp.isfile(list_file):
        raise DataError(f'image list not found: {show(list_file)}')
    sub = _join(cfg, (cfg.get('data_prefix') or {}).get('sub_data_root', ''))
    classes = _classes(cfg, cls)
    min_size = (cfg.get('filter_cfg') or {}).get('bbox_min_size')
    ids = [ln.strip() for ln in read_text(list_file).splitlines()]
    xmls = [osp.join(sub, 'Annotations', i + '.xml') for i in ids if i]
    for line, img_id in enumerate(ids, start=1):
        xml = osp.join(sub, 'Annotations', img_id + '.xml')
        if img_id and not osp.isfile(xml):
            raise DataError(f'{show(list_file)}, line {line}: {img_id} has '
                            f'no annotation file {show(xml)}')
    parsed = facts.many('voc', xmls, voc_facts)
    per_class = dict.fromkeys(classes, 0)
    skipped, degenerate, broken, images = {}, [], [], []
    for xml, got in zip(xmls, parsed):
        if isinstance(got, ET.ParseError):
            raise DataError(f'{show(xml)}: not valid XML ({got})')
        if isinstance(got, Exception):
            raise DataError(f'{show(xml)}: cannot be read ({got})')
        for k, (name, box) in enumerate(got['objects'], start=1):
            if name not in classes:  # mmdet skips them: a classes subset
                skipped[name] = skipped.get(name, 0) + 1
                continue
            if box is None:
                broken.append(f'{show(xml)}: object {k} ({name}) has no '
                              f'numeric bndbox xmin/ymin/xmax/ymax')
                continue
            w, h = box[2] - box[0], box[3] - box[1]
            if w < (min_size or 1) or h < (min_size or 1):
                degenerate.append(f'{show(xml)}: object {k} {box}')
            per_class[name] += 1
        img = osp.join(sub, 'JPEGImages', osp.basename(xml)[:-4] + '.jpg')
        images.append((img, got['size'], show(xml)))
    if broken:
        raise DataError(f'{len(broken)} broken VOC objects: '
                        f'{_some(broken)}')
    report = Report(show(list_file))
    typos = [
        f'{c!r}{_typo_hint(c, skipped)}' for c, n in per_class.items()
        if n == 0 and _typo_hint(c, skipped)
    ]
    if typos and role == 'train':
        raise DataError(f'{show(list_file)}: configured classes without any '
                        f'object, while objects of a similar name are '
                        f'skipped: {", ".join(typos)}')
    if role == 'train':
        if not any(per_class.values()):
            raise DataError(f'{show(list_file)}: no object of the configured'
                            f' classes {list(classes)}: nothing to train on')
        report.add('configured classes without any object',
                   [c for c, n in per_class.items() if n == 0])
    report.add('objects of classes not configured, skipped',
               [f'{n} x {c!r}' for c, n in sorted(skipped.items())])
    report.add(
        'boxes mmdet ignores (empty, inverted or under the '
        'minimum size)', degenerate)
    check_images(images, list_file, facts, report, 'its XML')
    report.log(warnings)
    return (f'{show(list_file)}: {len(images)} images, '
            f'{sum(per_class.values())} objects of {len(classes)} classes')


# ---------------------------------------------------------- segmentation
def _label_backend(cfg):
    for step in cfg.get('pipeline') or []:
        if isinstance(step, dict) and step.get('type') == 'LoadAnnotations':
            return step.get('imdecode_backend', 'pillow')
    return 'pillow'


def check_segmentation(cfg, cls, role, facts, warnings):
    prefix = cfg.get('data_prefix') or {}
    img_dir = _join(cfg, prefix.get('img_path', ''))
    seg_dir = _join(cfg, prefix.get('seg_map_path', ''))
    img_suffix = _default(cfg, cls, 'img_suffix')
    seg_suffix = _default(cfg, cls, 'seg_map_suffix')
    reduce_zero = _default(cfg, cls, 'reduce_zero_label')
    for step in cfg.get('pipeline') or []:
        if isinstance(step, dict) and step.get('type') == 'LoadAnnotations' \
                and step.get('reduce_zero_label') not in (None, reduce_zero):
            # mmseg asserts on it only when it loads the first label map
            raise DataError(
                f'{show(seg_dir)}: {cfg["type"]} has reduce_zero_label='
                f'{reduce_zero}, its pipeline\'s LoadAnnotations has '
                f'reduce_zero_label={step["reduce_zero_label"]}: set it in '
                f'one place (without the argument LoadAnnotations follows '
                f'the dataset)')
    if not osp.isdir(img_dir):
        raise DataError(f'image folder not found: {show(img_dir)}')
    ann_file = _join(cfg, cfg.get('ann_file', ''))
    if cfg.get('ann_file') and osp.isfile(ann_file):  # a split list
        names = [
            ln.strip() for ln in read_text(ann_file).splitlines()
            if ln.strip()
        ]
    else:  # what mmseg lists: every image under the folder
        names = sorted(
            osp.relpath(osp.join(d, f), img_dir)[:-len(img_suffix)]
            for d, _, files in os.walk(img_dir) for f in files
            if f.endswith(img_suffix))
    if not names:
        raise DataError(f'no *{img_suffix} images in {show(img_dir)}')
    num_classes = len(_classes(cfg, cls))
    # stored values: 0..C-1 (or 1..C with 0 = unlabelled when labels are
    # reduced by one), plus the ignore value 255
    valid = set(range(1, num_classes + 1)) | {0} if reduce_zero else \
        set(range(num_classes))
    valid.add(255)
    imgs = [osp.join(img_dir, n + img_suffix) for n in names]
    segs = [osp.join(seg_dir, n + seg_suffix) for n in names]
    missing = [
        f'{show(s)} (for {show(i)})' for i, s in zip(imgs, segs)
        if not osp.isfile(s)
    ]
    if missing:
        raise DataError(f'{len(missing)} label maps missing: '
                        f'{_some(missing)}')
    backend = _label_backend(cfg)
    labels = facts.many(
        'label', segs, lambda p: label_facts(p, backend), extra=backend)
    headers = facts.many('image', imgs, image_header)
    problems = []
    for img, seg, label, head in zip(imgs, segs, labels, headers):
        if isinstance(label, Exception):
            problems.append(f'{show(seg)}: unreadable label map ({label})')
        elif isinstance(head, Exception):
            problems.append(f'{show(img)}: unreadable image ({head})')
        elif label[2] != 1:
            problems.append(f'{show(seg)}: {label[2]} channels; a label map '
                            f'has one (class indices, e.g. an 8-bit '
                            f'grayscale or palette PNG), not colours')
        elif tuple(label[:2]) != tuple(head[0]):
            problems.append(f'{show(seg)}: {label[0]}x{label[1]} (width x '
                            f'height), its image {show(img)} is '
                            f'{head[0][0]}x{head[0][1]}')
        elif set(label[3]) - valid:
            expected = (f'0 (unlabelled), 1..{num_classes}'
                        if reduce_zero else f'0..{num_classes - 1}')
            problems.append(f'{show(seg)}: label values '
                            f'{sorted(set(label[3]) - valid)[:8]} outside '
                            f'the {num_classes} classes (expected '
                            f'{expected}, or 255 = ignore)')
    if problems:
        raise DataError(f'{len(problems)} of {len(segs)} label maps in '
                        f'{show(seg_dir)} cannot be used: {_some(problems)}')
    return (f'{show(img_dir)}: {len(imgs)} images with label maps of '
            f'{num_classes} classes')


# --------------------------------------------------------------- driver
def check_dataset(cfg, scope, role, evaluator, facts, warnings):
    """Checks one dataloader's dataset (``role``: 'train' or 'eval');
    returns a line per leaf dataset saying what it counted."""
    from mmdet.datasets import CocoDataset, XMLDataset
    counted = []
    for leaf in leaf_datasets(cfg):
        cls = _registry_class(leaf, scope)
        try:
            if scope == 'mmdet' and issubclass(cls, CocoDataset):
                found = check_coco(leaf, cls, role, facts, warnings, evaluator)
            elif scope == 'mmdet' and issubclass(cls, XMLDataset):
                found = check_voc(leaf, cls, role, facts, warnings)
            elif scope == 'mmseg':
                found = check_segmentation(leaf, cls, role, facts, warnings)
            else:
                found = 'not checked (a dataset class the check does not ' \
                    'know)'
            counted.append(f'{leaf.get("type")} {found}')
        except (DataError, FileNotFoundError):
            raise
        except Exception as e:  # a check must never crash without a name
            raise DataError(
                f'the data check of {leaf.get("type")} at '
                f'{show(_join(leaf, leaf.get("ann_file", "")))} failed: '
                f'{type(e).__name__}: {e} (--skip-data-check skips the '
                f'check)') from e
    return counted


def check_config_data(cfg, splits=('train', 'val'), counted=None):
    """Checks the datasets of the given dataloaders of a runner config;
    returns the warnings it logged. ``counted``: a list that gets one line
    per split and dataset saying what was checked and counted."""
    roots = sorted({
        show(osp.abspath(d.get('data_root') or '.'))
        for s in splits if cfg.get(f'{s}_dataloader')
        for d in leaf_datasets(cfg[f'{s}_dataloader']['dataset'])
    })
    facts = FileFacts(hashlib.sha1('\n'.join(roots).encode()).hexdigest()[:16])
    warnings = []
    try:
        for split in splits:
            loader = cfg.get(f'{split}_dataloader')
            if loader:
                lines = check_dataset(loader['dataset'], cfg.default_scope,
                                      'train' if split == 'train' else 'eval',
                                      cfg.get(f'{split}_evaluator'), facts,
                                      warnings)
                if counted is not None:
                    counted.extend(f'{split}: {line}' for line in lines)
    finally:
        facts.save()
    return warnings


# ---- the launch check: what our tools and DataCheckHook call
def check_toy_data_written(cfg):
    """A demo config whose toy data set is not there yet names the command
    that writes it, rather than failing on a missing file in the dataset."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        for ds in leaf_datasets(loader['dataset']) if loader else []:
            root = osp.normpath(ds.get('data_root') or '.')
            parts = root.split(os.sep)
            if parts[:2] == ['data', 'toy'] and len(parts) >= 3 \
                    and not osp.isdir(osp.join(*parts[:3])):
                raise FileNotFoundError(
                    f'toy data set not found: {osp.join(*parts[:3])} '
                    f'(relative to '
                    f'{os.getcwd()}); write it with: dtl-mm toy-data '
                    f'data/toy --only {parts[2]} (in the checkout: python '
                    f'tools/make_toy_data.py data/toy --only {parts[2]})')


def check_data(cfg, splits):
    """Reads the datasets' raw files up front. In a distributed run rank 0
    checks and the others wait for its verdict (one pass over the data, not
    one per rank); the process group is started here for that, as mmengine
    would start it (it then keeps it)."""
    from mmengine.dist import (broadcast_object_list, get_rank, get_world_size,
                               init_dist, is_distributed)

    check_toy_data_written(cfg)
    if cfg.get('launcher', 'none') != 'none' and not is_distributed():
        init_dist(cfg.launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))
    verdict, error = [None], None
    if get_rank() == 0:
        print_log(
            f'checking the {"/".join(splits)} data files ...',
            logger='current')
        counted = []
        try:
            check_config_data(cfg, splits, counted)
        except Exception as e:  # shared, so that no rank waits for ever
            verdict, error = [f'{type(e).__name__}: {e}'], e
        else:
            print_log('data check ok: ' + '; '.join(counted), logger='current')
    if get_world_size() > 1:
        broadcast_object_list(verdict, src=0)
    if error is not None:
        raise error
    if verdict[0] is not None:
        raise DataError(f'the data check on rank 0 failed: {verdict[0]}')
