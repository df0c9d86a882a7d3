"""Pre-flight checks of the data a config points at, before any training.

mmdet / mmseg datasets fail late or not at all on broken data: a JSON/XML
parse error without the file's name, annotations dropped silently, an image
whose size is not the one its boxes refer to, a missing image found hours
into an epoch, label maps that only crash the evaluation. Each configured
dataset is built here through the registry, without its pipeline, and its
data list loaded by the library itself (mmdet's ``CocoDataset`` /
``XMLDataset``, mmseg's ``BaseSegDataset``), so what is checked is exactly
what training will read; a parse error of the library is raised again as a
``DataError`` naming the file and what was expected. The checks then go
beyond the libraries: image headers and their size against the annotation,
polygons, label values against the classes, class names and order; data
that is legal but suspicious (boxes mmdet drops, a class without instances)
gets one summary warning with counts.

Sizes come from image headers (no decoding); label maps are decoded, since
their values are checked. What is learnt about a file is cached on disk,
keyed by its path, size and modification time (``FileFacts``), so checking
unchanged data again reads nothing but the files' ``stat``.
"""
import difflib
import hashlib
import io
import json
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
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

    @staticmethod
    def _stamps(paths):
        stamps = []
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                return None
            stamps.append([st.st_size, st.st_mtime_ns])
        return stamps

    def digest(self, kind, path, compute, extra=''):
        """``get`` for what is drawn from several files (a data set's
        annotation file and, for VOC, its XML files): ``compute(path)``
        returns (value, the files it read); the entry is reused while none
        of them changed."""
        key = f'{kind}:{show(osp.abspath(path))}:{extra}'
        hit = self.entries.get(key)
        if hit is not None and len(hit) == 3 and \
                hit[0] == self._stamps(hit[2]):
            return hit[1]
        value, files = compute(path)
        files = [osp.abspath(f) for f in files]
        stamps = self._stamps(files)
        if stamps is not None:
            self.entries[key] = [stamps, value, files]
            self.dirty = True
        return value

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
    """A path of the config as the dataset joins it (for messages written
    before the dataset exists)."""
    parts = [p for p in parts if p]
    path = osp.join(*parts) if parts else ''
    root = cfg.get('data_root') or ''
    return path if osp.isabs(path) else osp.join(root, path)


def _typo_hint(name, candidates):
    """'did you mean ...' for a class name that matches no category."""
    lower = {c.lower(): c for c in candidates}
    near = [lower[name.lower()]] if name.lower() in lower else \
        difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f' (did you mean {near[0]!r}?)' if near else ''


def _config_key(cfg, *more):
    """What a cached digest depends on besides its files: the dataset's
    settings (classes, prefixes, filter_cfg, ...) and the check's role."""
    settings = {k: v for k, v in cfg.items() if k != 'pipeline'}
    return json.dumps([settings, *more], sort_keys=True, default=str)


class Report:
    """Warnings of one dataset, each logged once as a summary with counts."""

    def __init__(self, source):
        self.source = source
        self.lines = []

    def add(self, what, items, count=None):
        """'<count> <what>, e.g. <items>'; ``count`` defaults to the
        number of items (give it when an item stands for several)."""
        items = list(items)
        if items:
            n = len(items) if count is None else count
            self.lines.append(f'{n} {what}, e.g. {_some(items)}')

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


def _left_out(ds, listed):
    """' (N left out by filter_cfg)' when the dataset's filter dropped
    images (they are not checked: training never reads them)."""
    n = listed - len(ds.data_list)
    return f' ({n} left out by filter_cfg)' if n else ''


# ------------------------------------------- the data list, by the library
def build_dataset(cfg, scope):
    """The dataset ``cfg`` configures, built through the registry under
    ``scope`` and not loaded yet (``lazy_init``). Without its pipeline:
    only the data list is checked, and building transforms can need more
    than the data (and registers them)."""
    from mmengine.registry import DATASETS, DefaultScope
    cfg = dict(cfg, pipeline=[], lazy_init=True, serialize_data=False)
    with DefaultScope.overwrite_default_scope(scope):
        try:
            return DATASETS.build(cfg)
        except KeyError as e:
            if 'is not in the' in str(e):  # the registry's "not found"
                raise DataError(
                    f'unknown dataset type {cfg["type"]!r} (not in the '
                    f'{scope} dataset registry)') from None
            raise


def load_data_list(ds, source, noun, expected, diagnose=None):
    """``ds.full_init()``, as training starts: the data list, filtered as
    ``filter_cfg`` says. The libraries' own errors name no file (or not
    what is wrong with it): raised again as a ``DataError`` naming
    ``source``; ``diagnose()`` may raise a more precise one first."""
    try:
        with redirect_stdout(io.StringIO()):  # pycocotools' progress lines
            ds.full_init()
    except DataError:
        raise
    except FileNotFoundError as e:
        missing = show(e.filename or source)
        raise DataError(f'{noun} not found: {missing}' if missing ==
                        show(source) else f'{show(source)}: {missing} not '
                        f'found') from None
    except UnicodeDecodeError:
        read_text(source)  # raises, naming the line and column
        raise
    except json.JSONDecodeError as e:
        raise DataError(f'{show(source)}: not valid JSON ({e})') from None
    except Exception as e:
        if diagnose is not None:
            diagnose()
        raise DataError(f'{show(source)}: {type(ds).__name__} cannot load '
                        f'it ({type(e).__name__}: {e}); expected '
                        f'{expected}') from e
    return ds.data_list


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
        hints = ', '.join(repr(c) + _typo_hint(c, names) for c in absent)
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
    return _detection_digest(ds, parsed, images, warnings, per_class,
                             classes), [ann_file]


def _detection_digest(ds, parsed, images, warnings, per_class, classes):
    """What is cached of a detection annotation file: its images (path,
    size, where named), warnings and counts."""
    return dict(
        images=images,
        warnings=warnings,
        objects=sum(per_class.values()),
        classes=len(classes),
        left_out=_left_out(ds, len(parsed)))


def check_coco(ds, cfg, role, facts, warnings, evaluator=None):
    evaluators = evaluator if isinstance(evaluator,
                                         (list, tuple)) else [evaluator or {}]
    format_only = any(e.get('format_only') for e in evaluators)
    return _check_annotated(
        'coco',
        ds.ann_file,
        'annotation file',
        lambda p: coco_digest(ds, role, format_only),
        _config_key(cfg, role, format_only),
        facts,
        warnings,
        where='the annotation',
        objects='annotations')


# ------------------------------------------------------------------- VOC
def voc_digest(ds, role):
    """Loads an XMLDataset with mmdet's ``load_data_list``; returns (what
    the check reports about it, the files read)."""
    list_file = ds.ann_file
    parsed = []  # (xml path, its objects' names, mmdet's parse)
    names = []
    parse, parse_objects = ds.parse_data_info, ds._parse_instance_info

    def parse_named(img_info):
        """mmdet's parse of one XML; its errors name no file."""
        xml = img_info['xml_path']
        try:
            info = parse(img_info)
        except ET.ParseError as e:
            raise DataError(f'{show(xml)}: not valid XML ({e})') from None
        except FileNotFoundError as e:
            if show(e.filename or xml) != show(xml):
                raise DataError(f'{show(xml)} has no <size>, and its image '
                                f'{show(e.filename)} is missing') from None
            raise DataError(f'{show(list_file)}, line {len(parsed) + 1}: '
                            f'{img_info["img_id"]} has no annotation file '
                            f'{show(xml)}') from None
        except Exception as e:
            raise DataError(
                f'{show(xml)}: mmdet cannot read it ({type(e).__name__}: '
                f'{e}); a VOC XML needs <size> with integer <width> and '
                f'<height>, and in each <object> a <name> and a <bndbox> '
                f'with numbers xmin, ymin, xmax, ymax') from e
        parsed.append((xml, names[-1], info))
        return info

    def read_objects(tree, *args, **kwargs):
        # mmdet skips objects of classes not configured without a trace:
        # their names are kept for the counts and the typo hint
        names.append([obj.findtext('name') for obj in tree.findall('object')])
        return parse_objects(tree, *args, **kwargs)

    # instance attributes shadow the class's methods for this object only:
    # mmdet's load_data_list calls them (each XML read once, by mmdet)
    ds.parse_data_info, ds._parse_instance_info = parse_named, read_objects
    data_list = load_data_list(ds, list_file, 'image list',
                               'a VOC image list (one image id a line)')
    classes = tuple(ds.metainfo['classes'])
    min_size = ds.bbox_min_size or 1
    skipped, degenerate = {}, []
    for xml, objects, info in parsed:
        for name in objects:
            if name not in classes:  # a classes subset: legal
                skipped[name] = skipped.get(name, 0) + 1
        for inst in info['instances']:
            x1, y1, x2, y2 = inst['bbox']
            if x2 - x1 < min_size or y2 - y1 < min_size:
                degenerate.append(f'{show(xml)}: '
                                  f'{classes[inst["bbox_label"]]} '
                                  f'{inst["bbox"]}')
    per_class = dict.fromkeys(classes, 0)
    for info in data_list:
        for inst in info['instances']:
            per_class[classes[inst['bbox_label']]] += 1
    typos = [
        f'{c!r}{_typo_hint(c, skipped)}' for c, n in per_class.items()
        if n == 0 and _typo_hint(c, skipped)
    ]
    if typos and role == 'train':
        raise DataError(f'{show(list_file)}: configured classes without any '
                        f'object, while objects of a similar name are '
                        f'skipped: {", ".join(typos)}')
    warnings = []
    if role == 'train':
        if not any(per_class.values()):
            raise DataError(f'{show(list_file)}: no object of the configured'
                            f' classes {list(classes)}: nothing to train on')
        warnings.append(('configured classes without any object',
                         [c for c, n in per_class.items() if n == 0]))
    # counted in objects; the examples name each class with its count
    warnings.append(('objects of classes not configured, skipped',
                     [f'{n} x {c!r}' for c, n in sorted(skipped.items())],
                     sum(skipped.values())))
    warnings.append(('boxes mmdet ignores (empty, inverted or under the '
                     'minimum size)', degenerate))
    images = [(d['img_path'], [d['width'], d['height']], show(d['xml_path']))
              for d in data_list]
    return _detection_digest(
        ds, parsed, images, warnings, per_class,
        classes), [list_file] + [xml for xml, _, _ in parsed]


def check_voc(ds, cfg, role, facts, warnings):
    return _check_annotated(
        'voc',
        ds.ann_file,
        'image list',
        lambda p: voc_digest(ds, role),
        _config_key(cfg, role),
        facts,
        warnings,
        where='its XML',
        objects='objects')


def _check_annotated(kind, ann_file, file_role, make_digest, config_key, facts,
                     warnings, where, objects):
    """A detection data set's annotation digest (cached per file), its
    warnings and its images checked; returns the count line."""
    if not osp.isfile(ann_file):
        raise DataError(f'{file_role} not found: {show(ann_file)}')
    digest = facts.digest(kind, ann_file, make_digest, extra=config_key)
    report = Report(show(ann_file))
    for what, items, *count in digest['warnings']:
        report.add(what, items, *count)
    check_images(digest['images'], ann_file, facts, report, where)
    report.log(warnings)
    return (f'{show(ann_file)}: {len(digest["images"])} images'
            f'{digest["left_out"]}, {digest["objects"]} {objects} of '
            f'{digest["classes"]} classes')


# ---------------------------------------------------------- segmentation
def _label_backend(cfg):
    for step in cfg.get('pipeline') or []:
        if isinstance(step, dict) and step.get('type') == 'LoadAnnotations':
            return step.get('imdecode_backend', 'pillow')
    return 'pillow'


def check_segmentation(ds, cfg, role, facts, warnings):
    img_dir = ds.data_prefix.get('img_path') or ''
    seg_dir = ds.data_prefix.get('seg_map_path') or ''
    reduce_zero = ds.reduce_zero_label
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
    data_list = load_data_list(
        ds, ds.ann_file or img_dir, 'image list', 'a list of image names '
        'without suffix, one a line')
    if not data_list:
        raise DataError(f'no *{ds.img_suffix} images in {show(img_dir)}')
    num_classes = len(ds.metainfo['classes'])
    # stored values: 0..C-1 (or 1..C with 0 = unlabelled when labels are
    # reduced by one), plus the ignore value 255
    valid = set(range(1, num_classes + 1)) | {0} if reduce_zero else \
        set(range(num_classes))
    valid.add(255)
    imgs = [d['img_path'] for d in data_list]
    segs = [d.get('seg_map_path') for d in data_list]
    if None in segs:  # no seg_map_path configured: images only
        check_images([(i, None, '') for i in imgs], img_dir, facts,
                     Report(show(img_dir)), 'its label map')
        return f'{show(img_dir)}: {len(imgs)} images without label maps'
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


# ------------------------------------------------------- other datasets
def check_other(ds, cfg, role, facts, warnings):
    """A dataset class without a check of its own: the images its data
    list names (and their sizes, where it gives them)."""
    source = ds.ann_file or ds.data_root or ''
    data_list = load_data_list(ds, source, 'annotation file',
                               f'what {type(ds).__name__} reads')
    images = [
        (d['img_path'],
         [d['width'], d['height']] if 'width' in d and 'height' in d else None,
         f'entry {i}') for i, d in enumerate(data_list) if d.get('img_path')
    ]
    if not images:
        return 'not checked (its data list names no image files)'
    report = Report(show(source))
    check_images(images, source, facts, report, 'its data list')
    report.log(warnings)
    return f'{show(source)}: {len(images)} images'


def _check_for(ds):
    """The check for a dataset object, by its class."""
    kinds = []
    try:
        from mmdet.datasets import CocoDataset, XMLDataset
        kinds += [(CocoDataset, 'coco'), (XMLDataset, 'voc')]
    except ImportError:  # a segmentation-only environment
        pass
    try:
        from mmseg.datasets import BaseSegDataset
        kinds.append((BaseSegDataset, 'seg'))
    except ImportError:  # a detection-only environment
        pass
    return next((kind for cls, kind in kinds if isinstance(ds, cls)), None)


# --------------------------------------------------------------- driver
def check_dataset(cfg, scope, role, evaluator, facts, warnings):
    """Checks one dataloader's dataset (``role``: 'train' or 'eval');
    returns a line per leaf dataset saying what it counted."""
    counted = []
    for leaf in leaf_datasets(cfg):
        try:
            ds = build_dataset(leaf, scope)
            kind = _check_for(ds)
            if kind == 'coco':
                found = check_coco(ds, leaf, role, facts, warnings, evaluator)
            elif kind == 'voc':
                found = check_voc(ds, leaf, role, facts, warnings)
            elif kind == 'seg':
                found = check_segmentation(ds, leaf, role, facts, warnings)
            else:
                found = check_other(ds, leaf, role, facts, warnings)
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


# ---- the launch check: what DTLRunner calls before a loop starts
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
