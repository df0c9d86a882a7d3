"""tools/train.py, tools/test.py, --resume, distributed launch, and mmdet's
and mmseg's own test tools on our checkpoints (issue 3).

Each tool runs as a subprocess on the demo configs and the toy data in its
real layout, as a user would run it.
"""
import os
import os.path as osp
import subprocess
import sys

import mmdet
import mmseg
import pytest
import torch

from dtl_mm.toy_data_writer import MAKERS
from tool_utils import (DEMO, FINAL, METRIC_KEYS, ROOT, SHORT, metrics_in,
                        run_tool, tool)

@pytest.fixture(scope='session')
def workspace(tmp_path_factory):
    """A folder with data/toy/{coco,voc,ade20k} where the tools run."""
    ws = tmp_path_factory.mktemp('ws')
    for name, make in MAKERS.items():
        make(str(ws / 'data' / 'toy' / name), n_train=8, n_val=4)
    return ws


def train(ws, task, work_dir, *extra):
    return run_tool(ws, tool('train.py'), osp.join(ROOT, DEMO[task]),
                    '--work-dir', str(work_dir), '--cfg-options',
                    *SHORT[task], *extra)


@pytest.fixture(scope='session')
def trained(workspace):
    """One short training run per task, shared by the tests below."""
    runs = {}
    for task in DEMO:
        wd = workspace / f'wd_{task}'
        out = train(workspace, task, wd)
        assert 'Parameters (trainable / frozen)' in out
        assert osp.isfile(wd / FINAL[task])
        runs[task] = wd / FINAL[task]
    return runs


@pytest.mark.parametrize('task', list(DEMO))
def test_train_then_test_prints_real_metrics(workspace, trained, task):
    out = run_tool(workspace, tool('test.py'), osp.join(ROOT, DEMO[task]),
                   str(trained[task]), '--work-dir',
                   str(workspace / f'test_{task}'))
    values = metrics_in(out, METRIC_KEYS[task])
    assert all(0 <= v <= 100 for v in values.values())


@pytest.mark.parametrize('task,lib', [('coco', mmdet), ('voc', mmdet),
                                      ('ade20k', mmseg)])
def test_libraries_own_test_tool_evaluates_our_checkpoint(
        workspace, trained, task, lib):
    own = osp.join(osp.dirname(lib.__file__), '.mim', 'tools', 'test.py')
    assert osp.isfile(own)
    out = run_tool(workspace, own, osp.join(ROOT, DEMO[task]),
                   str(trained[task]), '--work-dir',
                   str(workspace / f'own_{task}'))
    metrics_in(out, METRIC_KEYS[task])


def test_test_tool_writes_outputs(workspace, trained):
    pkl = workspace / 'coco_results.pkl'
    run_tool(workspace, tool('test.py'), osp.join(ROOT, DEMO['coco']),
             str(trained['coco']), '--work-dir', str(workspace / 'out_c'),
             '--out', str(pkl))
    assert pkl.stat().st_size > 0
    seg_out, seg_vis = workspace / 'ade_preds', workspace / 'ade_vis'
    run_tool(workspace, tool('test.py'), osp.join(ROOT, DEMO['ade20k']),
             str(trained['ade20k']), '--work-dir', str(workspace / 'out_a'),
             '--out', str(seg_out), '--show-dir', str(seg_vis))
    assert len(list(seg_out.glob('*.png'))) == 4
    # every one of the 4 validation images drawn, not every 50th
    assert len(list(seg_vis.rglob('*.png'))) == 4


def test_resume_continues_iterations_and_optimizer(workspace):
    wd = workspace / 'wd_resume'
    train(workspace, 'voc', wd)
    first = torch.load(wd / 'epoch_1.pth', weights_only=False)
    out = train(workspace, 'voc', wd, 'train_cfg.max_epochs=2', '--resume')
    assert 'resumed epoch: 1, iter: 2' in out
    second = torch.load(wd / 'epoch_2.pth', weights_only=False)
    assert (first['meta']['iter'], second['meta']['iter']) == (2, 4)
    assert second['meta']['epoch'] == 2
    steps = {int(s['step']) for s in second['optimizer']['state'].values()}
    assert steps == {4}  # AdamW's step count carried on from 2
    # and the moments continued from the first run rather than restarting
    key = next(iter(first['optimizer']['state']))
    assert not torch.equal(first['optimizer']['state'][key]['exp_avg'],
                           second['optimizer']['state'][key]['exp_avg'])


def test_two_process_distributed_training(workspace):
    wd = workspace / 'wd_dist'
    proc = subprocess.run(
        ['bash', tool('dist_train.sh'), osp.join(ROOT, DEMO['voc']), '2',
         '--work-dir', str(wd), '--cfg-options', *SHORT['voc'],
         'train_dataloader.batch_size=2'],
        cwd=workspace, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=ROOT, PYTHON=sys.executable,
                 PORT='29517', OMP_NUM_THREADS='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'distributed run on gloo' in out
    ckpt = torch.load(wd / 'epoch_1.pth', weights_only=False)
    # 8 images, 2 ranks x 2 per batch: two iterations, so DDP would have
    # failed on the second one had a parameter gone without a gradient
    assert ckpt['meta']['iter'] == 2
    log = open(next(wd.glob('*/*.log'))).read()
    assert 'find_unused_parameters=False' in log
    assert 'MMDistributedDataParallel' in log
    # RankConsistencyHook compared the trainable weights of both ranks
    assert 'trainable weights identical on all 2 ranks after iteration 2' \
        in log
    assert 'trainable weights identical on all 2 ranks after epoch 1' in log
    # and the two-process evaluation of that checkpoint
    proc = subprocess.run(
        ['bash', tool('dist_test.sh'), osp.join(ROOT, DEMO['voc']),
         str(wd / 'epoch_1.pth'), '2', '--work-dir', str(wd / 'test')],
        cwd=workspace, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=ROOT, PYTHON=sys.executable,
                 PORT='29518', OMP_NUM_THREADS='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    metrics_in(out, METRIC_KEYS['voc'])
