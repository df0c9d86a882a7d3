"""tools/train.py, tools/test.py, --resume, distributed launch, and mmdet's
and mmseg's own test tools on our checkpoints.

Each tool runs as a subprocess on the demo configs and the toy data in its
real layout, as a user would run it. The short training of each task is the
session's shared one (conftest.short_run).
"""
import os.path as osp
import re
import subprocess

import mmdet
import mmseg
import pytest
import torch

from helpers.tool_utils import (DEMO, FINAL, METRIC_KEYS, ROOT, SHORT,
                                copy_run, dist_env, dist_train, metrics_in,
                                run_tool, tool, train)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize('task', list(DEMO))
def test_train_then_test_prints_real_metrics(toy_workspace, short_run, task):
    ckpt = short_run(task) / FINAL[task]
    out = run_tool(toy_workspace, tool('test.py'), osp.join(ROOT, DEMO[task]),
                   str(ckpt), '--work-dir',
                   str(toy_workspace / f'test_{task}'))
    values = metrics_in(out, METRIC_KEYS[task])
    assert all(0 <= v <= 100 for v in values.values())


@pytest.mark.parametrize('task,lib', [('coco', mmdet), ('voc', mmdet),
                                      ('ade20k', mmseg)])
def test_libraries_own_test_tool_evaluates_our_checkpoint(
        toy_workspace, short_run, task, lib):
    own = osp.join(osp.dirname(lib.__file__), '.mim', 'tools', 'test.py')
    assert osp.isfile(own)
    out = run_tool(toy_workspace, own, osp.join(ROOT, DEMO[task]),
                   str(short_run(task) / FINAL[task]), '--work-dir',
                   str(toy_workspace / f'own_{task}'))
    metrics_in(out, METRIC_KEYS[task])


def test_test_tool_writes_outputs(toy_workspace, short_run):
    ws = toy_workspace
    pkl = ws / 'coco_results.pkl'
    run_tool(ws, tool('test.py'), osp.join(ROOT, DEMO['coco']),
             str(short_run('coco') / FINAL['coco']), '--work-dir',
             str(ws / 'out_c'), '--out', str(pkl))
    assert pkl.stat().st_size > 0
    seg_out, seg_vis = ws / 'ade_preds', ws / 'ade_vis'
    run_tool(ws, tool('test.py'), osp.join(ROOT, DEMO['ade20k']),
             str(short_run('ade20k') / FINAL['ade20k']), '--work-dir',
             str(ws / 'out_a'), '--out', str(seg_out), '--show-dir',
             str(seg_vis))
    assert len(list(seg_out.glob('*.png'))) == 4
    # every one of the 4 validation images drawn, not every 50th
    assert len(list(seg_vis.rglob('*.png'))) == 4


def optimizer_moments(ckpt):
    return {(pid, name): s[name]
            for pid, s in ckpt['optimizer']['state'].items()
            for name in ('exp_avg', 'exp_avg_sq')}


def test_resume_continues_iterations_and_optimizer(toy_workspace, short_run,
                                                   tmp_path):
    """A finished one-epoch run extended to two with --resume ends exactly
    where an uninterrupted two-epoch run does, weights and AdamW moments;
    the same start without the optimizer state (load_from) does not."""
    ws = toy_workspace
    wd = copy_run(short_run('voc'), tmp_path / 'resumed')
    first = torch.load(wd / 'epoch_1.pth', weights_only=False)
    # the first run's seed: the data order of the samplers built anew
    seed = f'randomness.seed={first["meta"]["seed"]}'
    out = train(ws, 'voc', wd, 'train_cfg.max_epochs=2', seed, '--resume')
    assert 'resumed epoch: 1, iter: 2' in out
    # epoch 1 was not trained again (a run that ignored --resume would)
    assert set(re.findall(r'Epoch\(train\) *\[ *(\d+)\]', out)) == {'2'}
    second = torch.load(wd / 'epoch_2.pth', weights_only=False)
    assert (first['meta']['iter'], second['meta']['iter']) == (2, 4)
    assert second['meta']['epoch'] == 2
    steps = {int(s['step']) for s in second['optimizer']['state'].values()}
    assert steps == {4}  # AdamW's step count carried on from 2
    key = next(iter(first['optimizer']['state']))
    assert not torch.equal(first['optimizer']['state'][key]['exp_avg'],
                           second['optimizer']['state'][key]['exp_avg'])

    # and the moments continued from the first run rather than restarting:
    # equal to those of the same two epochs run without a stop ...
    train(ws, 'voc', tmp_path / 'straight', 'train_cfg.max_epochs=2', seed)
    straight = torch.load(
        tmp_path / 'straight' / 'epoch_2.pth', weights_only=False)
    moments = optimizer_moments(straight)
    assert moments.keys() == optimizer_moments(second).keys()
    for k, v in optimizer_moments(second).items():
        assert torch.equal(v, moments[k]), k
    for k, v in straight['state_dict'].items():
        assert torch.equal(second['state_dict'][k], v), k
    # ... which a second epoch from the same weights with the optimizer
    # state started afresh does not give
    train(ws, 'voc', tmp_path / 'fresh', seed,
          f'load_from={wd / "epoch_1.pth"}')
    fresh = torch.load(tmp_path / 'fresh' / 'epoch_1.pth', weights_only=False)
    assert {int(s['step']) for s in fresh['optimizer']['state'].values()} \
        == {2}
    assert not all(
        torch.equal(v, moments[k])
        for k, v in optimizer_moments(fresh).items())


def test_two_process_distributed_training(toy_workspace, tmp_path):
    ws = toy_workspace
    wd = tmp_path / 'wd_dist'
    rc, out = dist_train(ws, wd, *SHORT['voc'],
                         'train_dataloader.batch_size=2')
    assert rc == 0, out[-4000:]
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
    proc = subprocess.run([
        'bash',
        tool('dist_test.sh'),
        osp.join(ROOT, DEMO['voc']),
        str(wd / 'epoch_1.pth'), '2', '--work-dir',
        str(wd / 'test')
    ],
                          cwd=ws,
                          capture_output=True,
                          text=True,
                          timeout=600,
                          env=dist_env())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    metrics_in(out, METRIC_KEYS['voc'])


def test_same_command_gives_the_same_model_and_metric(toy_workspace,
                                                      short_run):
    """The shipped toy configs fix their seed: a second run of the same
    command trains the same weights and prints the same metric."""
    import glob
    first = short_run('voc')
    [log] = glob.glob(str(first / '*' / '*.log'))
    again = toy_workspace / 'wd_voc_again'
    out = train(toy_workspace, 'voc', again)
    assert metrics_in(out, METRIC_KEYS['voc']) == metrics_in(
        open(log).read(), METRIC_KEYS['voc'])
    a = torch.load(
        first / FINAL['voc'], map_location='cpu',
        weights_only=False)['state_dict']
    b = torch.load(
        again / FINAL['voc'], map_location='cpu',
        weights_only=False)['state_dict']
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_says_which_learning_rate_wins(toy_workspace, short_run,
                                              tmp_path):
    """A changed learning rate on --resume: the restored optimizer state
    keeps the checkpoint's, and the run says so, naming both values."""
    wd = copy_run(short_run('voc'), tmp_path / 'new_lr')
    first = torch.load(wd / 'epoch_1.pth', weights_only=False)
    old_lr = first['optimizer']['param_groups'][0]['initial_lr']
    new_lr = old_lr * 10
    out = train(toy_workspace, 'voc', wd, 'train_cfg.max_epochs=2',
                f'optim_wrapper.optimizer.lr={new_lr}', '--resume')
    assert (f'optim_wrapper.optimizer.lr: {old_lr!r} in the checkpoint, '
            f'{new_lr!r} now') in out, out[-3000:]
    assert 'load_from=CHECKPOINT' in out
    # what the warning says: the checkpoint's rate went on
    second = torch.load(wd / 'epoch_2.pth', weights_only=False)
    assert {g['initial_lr']
            for g in second['optimizer']['param_groups']} == {old_lr}


def test_resume_with_another_number_of_processes_is_named(
        toy_workspace, tmp_path):
    """Two processes trained, one resumes: both world sizes and total
    batches are named."""
    wd = tmp_path / 'two_ranks'
    rc, out = dist_train(toy_workspace, wd, *SHORT['voc'])
    assert rc == 0, out[-3000:]
    from mmengine.config import Config
    per_process = Config.fromfile(osp.join(
        ROOT, DEMO['voc'])).train_dataloader.batch_size
    out = train(toy_workspace, 'voc', wd, 'train_cfg.max_epochs=2', '--resume')
    assert (f'the checkpoint was saved by 2 processes, this run has 1 (a '
            f'total batch of {2 * per_process} then, {per_process} now)'
            ) in out, out[-3000:]
