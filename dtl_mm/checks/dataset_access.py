"""What every data check shares: the configured datasets built through the
registry and their data lists loaded by the library itself, the images
checked against what the annotations say, and the warnings summarised."""
import difflib
import io
import json
import os.path as osp
from contextlib import redirect_stdout

from mmengine.logging import print_log

from .file_facts import (WRAPPERS, DataError, image_header, read_text, show,
                         some_of)


# --------------------------------------------------------- shared helpers
def leaf_datasets(cfg):
    """The real dataset configs inside Repeat/Concat/... wrappers."""
    if cfg.get('type') in WRAPPERS:
        inner = cfg.get('datasets') or [cfg['dataset']]
        return [leaf for d in inner for leaf in leaf_datasets(d)]
    return [cfg]


def join_root(cfg, *parts):
    """A path of the config as the dataset joins it (for messages written
    before the dataset exists)."""
    parts = [p for p in parts if p]
    path = osp.join(*parts) if parts else ''
    root = cfg.get('data_root') or ''
    return path if osp.isabs(path) else osp.join(root, path)


def typo_hint(name, candidates):
    """'did you mean ...' for a class name that matches no category."""
    lower = {c.lower(): c for c in candidates}
    near = [lower[name.lower()]] if name.lower() in lower else \
        difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f' (did you mean {near[0]!r}?)' if near else ''


def config_key(cfg, *more):
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
            self.lines.append(f'{n} {what}, e.g. {some_of(items)}')

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
                        f'cannot be read: {some_of(unreadable)}')
    if wrong:
        raise DataError(f'{len(wrong)} images of {show(source)} differ in '
                        f'size (width x height) from their annotation, so '
                        f'its boxes / masks would refer to other pixels: '
                        f'{some_of(wrong)}')
    report.add(
        'images whose EXIF orientation rotates them on loading, '
        'while their annotation gives the stored size (their boxes '
        'are used on the rotated image)', rotated)


def left_out(ds, listed):
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


def detection_digest(ds, parsed, images, warnings, per_class, classes):
    """What is cached of a detection annotation file: its images (path,
    size, where named), warnings and counts."""
    return dict(
        images=images,
        warnings=warnings,
        objects=sum(per_class.values()),
        classes=len(classes),
        left_out=left_out(ds, len(parsed)))


def check_annotated(kind, ann_file, file_role, make_digest, config_key, facts,
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
