"""Which checkpoint of a work dir a run resumes from, and which it must not
overwrite."""
import os
import os.path as osp
import re

import torch
from mmengine.logging import print_log
from mmengine.runner import find_latest_checkpoint

from .safe_load import load_checkpoint_file, starts_as_zip

CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_\d+\.pth$')


def saved_checkpoints(work_dir):
    """The epoch_N.pth / iter_N.pth files of a work dir, newest first."""
    try:
        names = [n for n in os.listdir(work_dir) if CHECKPOINT_NAME.match(n)]
    except OSError:
        return []
    paths = [osp.join(work_dir, n) for n in names]
    return sorted(paths, key=osp.getmtime, reverse=True)


def latest_checkpoint(work_dir):
    """(checkpoint path or None, note on how it was found).

    ``last_checkpoint`` names the latest save; when it is missing, empty or
    names a file that is gone (a save interrupted before mmengine wrote it,
    a work dir moved), the newest ``epoch_N.pth`` / ``iter_N.pth`` of the
    work dir is taken instead, so a complete checkpoint is never ignored.
    """
    if not osp.isdir(work_dir):
        return None, f'the work dir {work_dir} does not exist'
    last = osp.join(work_dir, 'last_checkpoint')
    named = find_latest_checkpoint(work_dir)  # mmengine's reading of it
    if named is None:
        note = f'no {last}'
    elif named and osp.isfile(named):
        if osp.realpath(osp.dirname(named)) == osp.realpath(work_dir):
            return named, ''
        # a copied work dir still names the original's file: the copy's
        # own, when it has one, is the one its run continues
        own = osp.join(work_dir, osp.basename(named))
        if osp.isfile(own):
            return own, (f'{last} names {named}, in another folder (a '
                         f'copied work dir?); this work dir\'s own '
                         f'{osp.basename(named)} is used')
        return named, f'{last} names {named}, outside the work dir'
    elif named and osp.isfile(osp.join(work_dir, osp.basename(named))):
        # a work dir moved or renamed
        return (osp.join(work_dir, osp.basename(named)),
                f'{last} names {named}, found in the work dir')
    else:
        note = (f'{last} is empty' if not named else
                f'{last} names {named}, which does not exist')
    found = saved_checkpoints(work_dir)
    if found:
        return found[0], f'{note}; the newest checkpoint file is used'
    return None, f'{note} and no epoch_*.pth / iter_*.pth in {work_dir}'


def complete(path) -> bool:
    """A checkpoint torch wrote to its end: a zip archive (what torch.save
    writes) whose directory, written last, is there; a cheap test that reads
    no data. A file in torch's legacy (non-zip) format cannot be told and
    counts as complete."""
    import zipfile
    try:
        if not starts_as_zip(path):
            return True
    except OSError:
        return False
    return zipfile.is_zipfile(path)


def good_checkpoint(work_dir, tries=3):
    """(newest checkpoint of the work dir whose weights are all finite,
    newer ones that are not): a checkpoint saved just before the loss turned
    non-finite can already hold the blown-up weights."""
    last, _ = latest_checkpoint(work_dir)
    candidates = ([last] if last else
                  []) + [p for p in saved_checkpoints(work_dir) if p != last]
    broken = []
    for path in candidates[:tries]:
        try:
            state = load_checkpoint_file(path).get('state_dict', {})
        except Exception:  # unreadable: not a good one either
            broken.append(path)
            continue
        if all(
                torch.isfinite(v).all() for v in state.values()
                if torch.is_tensor(v) and v.is_floating_point()):
            return path, broken
        broken.append(path)
    return None, broken


def resumable_checkpoint(work_dir):
    """The checkpoint ``--resume`` without a file continues, or None (logged
    with how it was chosen): the latest, or the newest complete one when the
    latest was cut short while saving (a full disk, a killed job)."""
    ckpt, note = latest_checkpoint(work_dir)
    if ckpt is not None and not complete(ckpt):
        older = [
            p for p in saved_checkpoints(work_dir) if p != ckpt and complete(p)
        ]
        note = (f'{ckpt} is incomplete (cut short while saving?)' +
                (f'; the newest complete checkpoint, {older[0]}, is used'
                 if older else ' and no complete one is left'))
        ckpt = older[0] if older else None
    if ckpt is None:
        print_log(
            f'--resume: nothing to resume from ({note}); training '
            f'starts from scratch',
            logger='current',
            level=30)
    else:
        print_log(
            f'--resume: resuming from {ckpt}' + (f' ({note})' if note else ''),
            logger='current',
            level=30 if note else 20)
    return ckpt


def resume_from(cfg, resume):
    """--resume CKPT, or --resume alone: the latest checkpoint of the work
    dir. With none there, training starts from scratch (from the config's
    load_from, if any) and says so: a job script can pass --resume on every
    (re)start."""
    if resume != 'auto':
        if '://' not in resume and not osp.isfile(resume):
            raise FileNotFoundError(f'--resume: checkpoint not found: '
                                    f'{resume}')
        cfg.resume, cfg.load_from = True, resume
        return
    ckpt = resumable_checkpoint(cfg.work_dir)
    cfg.resume = ckpt is not None
    if ckpt is not None:
        cfg.load_from = ckpt


def refuse_to_overwrite(cfg):
    """A new run (no --resume) into a work dir that holds checkpoints would
    overwrite them one by one; refused, so that nothing is lost."""
    found = saved_checkpoints(cfg.work_dir)
    if cfg.get('resume') or not found:
        return
    names = ', '.join(osp.basename(p) for p in found[:5])
    raise SystemExit(
        f'the work dir {cfg.work_dir} already holds {len(found)} '
        f'checkpoint(s) of an earlier run ({names}); a new run would '
        f'overwrite them. Continue that run with --resume, train into '
        f'another --work-dir, or move the checkpoints away first.')
