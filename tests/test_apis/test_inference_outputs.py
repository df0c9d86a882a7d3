"""An --out-dir where a drawing or JSON file would replace an input image
(the input folder itself, an ancestor whose mirrored names land on the
inputs, a link to one) is refused before anything is written; the inputs
stay byte-identical."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dtl_mm.apis.inference_outputs import PredictionWriter, unique_inputs
from dtl_mm.apis.inferencer import list_images, task_names
from helpers.multitask_utils import voc_and_ade20k_workspace
from helpers.tool_utils import DEMO, ROOT, tool

TASKS = {1: ('voc', ), 2: ('voc', 'ade20k')}
STEM = osp.splitext(osp.basename(DEMO['voc']))[0]


def snapshot(root):
    """Every folder, link and file under ``root``, with each file's
    bytes."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            path = osp.join(d, name)
            out[osp.relpath(path, root)] = (
                os.readlink(path) if osp.islink(path) else
                open(path, 'rb').read() if osp.isfile(path) else 'dir')
    return out


def image(path, seed):
    os.makedirs(osp.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (128, 160, 3))
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return str(path)


# name -> (input arguments, --out-dir, number of tasks), under a root
CASES = {
    'the input folder': (['flat'], 'flat', 1),
    'a glob in it': (['flat/*.*'], 'flat', 1),
    'one image in it': (['flat/x.jpg'], 'flat', 1),
    'an ancestor': (['nested/*/*'], 'nested', 1),
    'a link to it': (['flat'], 'link', 1),
    'a hard link in it': (['flat/x.jpg'], 'hard', 1),
    # several tasks write into <out-dir>/<task>/
    'two tasks': ([f'per_task/{STEM}'], 'per_task', 2),
}


def inputs(root):
    """The input images of :data:`CASES` under ``root``."""
    image(root / 'flat' / 'x.jpg', 0)
    image(root / 'flat' / 'y.png', 1)
    image(root / 'nested' / 'a' / 'x.jpg', 2)
    image(root / 'nested' / 'b' / 'y.jpg', 3)
    image(root / 'per_task' / STEM / 'x.jpg', 4)
    os.symlink(root / 'flat', root / 'link')
    os.makedirs(root / 'hard')
    os.link(root / 'flat' / 'x.jpg', root / 'hard' / 'x.jpg')
    return root


def configs(n):
    return [osp.join(ROOT, DEMO[t]) for t in TASKS[n]]


@pytest.mark.parametrize('case', CASES)
def test_writer_refuses_to_write_over_an_input(tmp_path, case):
    """The API (MultiTaskInferencer's writer): refused before any folder
    is made."""
    specs, out, n = CASES[case]
    root = inputs(tmp_path)
    imgs = unique_inputs(
        [img for s in specs for img in list_images(str(root / s))])
    before = snapshot(root)
    with pytest.raises(ValueError, match=r'would overwrite \d+ input'):
        PredictionWriter(
            dict.fromkeys(task_names(configs(n))), imgs, str(root / out), 0.3)
    assert snapshot(root) == before


@pytest.mark.parametrize(
    'specs,out',
    [
        (['nested/a'], 'nested'),  # x.jpg beside a/, not on it
        (['flat'], 'flat/out'),
        (['per_task/*/*'], 'per_task'),  # one task: no sub-folder per task
    ],
    ids=['parent', 'sub-folder', 'one task'])
def test_an_out_dir_near_the_inputs_that_replaces_none_is_taken(
        tmp_path, specs, out):
    root = inputs(tmp_path)
    imgs = [img for s in specs for img in list_images(str(root / s))]
    PredictionWriter(dict.fromkeys(['voc']), imgs, str(root / out), 0.3)
    assert osp.isdir(root / out)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return voc_and_ade20k_workspace(tmp_path_factory.mktemp('out_dir'))


@pytest.mark.slow  # the tool as a script, three times
def test_infer_tool_refuses_to_write_over_its_inputs(workspace, tmp_path):
    """Exit status 2, one line naming the clash, nothing written, the
    inputs byte-identical (was: exit 0, the input JPEGs replaced by the
    drawings). The other cases: the writer test above."""
    root = inputs(tmp_path)
    before = snapshot(root)
    for case in ('the input folder', 'an ancestor', 'two tasks'):
        specs, out, n = CASES[case]
        cmd = [sys.executable, tool('infer.py')]
        cmd += [str(root / s) for s in specs]
        for t in TASKS[n]:
            cmd += [
                '--task',
                osp.join(ROOT, DEMO[t]),
                str(workspace / f'{t}.pth')
            ]
        proc = subprocess.run(
            cmd + ['--out-dir', str(root / out)],
            cwd=workspace,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=ROOT))
        assert proc.returncode == 2, (case, proc.stdout + proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and 'would overwrite' in lines[0] and \
            f'--out-dir {root / out}' in lines[0], (case, proc.stderr)
        assert snapshot(root) == before, case
