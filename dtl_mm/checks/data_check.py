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
import hashlib
import os
import os.path as osp

from mmengine.logging import print_log

from .coco_check import check_coco
from .dataset_access import build_dataset, join_root, leaf_datasets
from .file_facts import DataError, FileFacts, show
from .segmentation_check import check_other, check_segmentation
from .voc_check import check_voc


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
                f'{show(join_root(leaf, leaf.get("ann_file", "")))} failed: '
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
