"""Finding the checkpoint to resume from in a work dir."""
import os
import os.path as osp
import re

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
    if osp.isfile(last):
        with open(last) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named, ''
        moved = osp.join(work_dir, osp.basename(named)) if named else ''
        if moved and osp.isfile(moved):  # a work dir moved or renamed
            return moved, f'{last} names {named}, found in the work dir'
        note = (f'{last} is empty' if not named else
                f'{last} names {named}, which does not exist')
    else:
        note = f'no {last}'
    found = saved_checkpoints(work_dir)
    if found:
        return found[0], f'{note}; the newest checkpoint file is used'
    return None, f'{note} and no epoch_*.pth / iter_*.pth in {work_dir}'
