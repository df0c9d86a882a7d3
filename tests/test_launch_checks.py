"""Config and launch mistakes caught before a run starts, each naming the
field, variable or file: out-of-range freezing and DTL block options, a
random Swin outside the demo configs, --amp without a GPU, a second run
into a work dir with checkpoints, a distributed PORT in use, and VOC's
class names printed for a custom class list."""
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from tool_utils import DEMO, ROOT, tool

from dtl_mm.apis.runner_setup import (check_amp, check_pretrained_trunk,
                                      load_config)
from dtl_mm.checkpoint.resume import refuse_to_overwrite
from dtl_mm.checks.model_check import check_model_config

VOC = 'configs/voc/retinanet_swin-b_dtlv2-ls_fpn_voc0712.py'


def demo(task='voc', **backbone):
    cfg = Config.fromfile(osp.join(ROOT, DEMO[task]))
    cfg.model.backbone.update(backbone)
    return cfg


@pytest.mark.parametrize('backbone, message', [
    (dict(frozen_stages=9), r'model.backbone.frozen_stages=9: must be a '
     r'whole number in -1..4 .*freeze the whole Swin anyway'),
    (dict(first_g_block=0), r'model.backbone.first_g_block=0: must be a '
     r'whole block number in 1..12'),
    (dict(first_g_block=7.0), r'model.backbone.first_g_block=7.0: must be a '
     r'whole block number in 1..12'),
    (dict(first_g_block=10, g_blocks=[8, 12]),
     r'first_g_block=10 and g_blocks=\[8, 12\] conflict: .* at 8'),
])
def test_block_options_are_checked_by_name(backbone, message):
    with pytest.raises(ValueError, match=message):
        check_model_config(demo(**backbone))


def test_random_swin_needs_the_named_option():
    for init in (None, dict(type='Pretrained', checkpoint='')):
        cfg = load_config(osp.join(ROOT, VOC))
        cfg.model.backbone.init_cfg = init
        with pytest.raises(
                ValueError,
                match=r'model.backbone.init_cfg=.*random frozen Swin.*'
                r'allow_random_swin=True'):
            check_pretrained_trunk(cfg)
        cfg.allow_random_swin = True
        check_pretrained_trunk(cfg)
    for task in DEMO:  # no pretrained tiny Swin exists: they opt in
        check_pretrained_trunk(load_config(osp.join(ROOT, DEMO[task])))
    shipped = load_config(osp.join(ROOT, VOC))  # a release URL: fine
    check_pretrained_trunk(shipped)


def test_amp_without_a_gpu_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = load_config(osp.join(ROOT, DEMO['voc']))
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    with pytest.raises(SystemExit, match='needs a CUDA GPU'):
        check_amp(cfg)


def test_second_run_into_a_work_dir_with_checkpoints_is_refused(tmp_path):
    cfg = load_config(osp.join(ROOT, DEMO['voc']), work_dir=str(tmp_path))
    refuse_to_overwrite(cfg)  # empty: fine
    (tmp_path / 'epoch_1.pth').write_bytes(b'earlier run')
    with pytest.raises(
            SystemExit,
            match=rf'{tmp_path} already holds 1 checkpoint.*epoch_1.pth.*'
            r'--resume'):
        refuse_to_overwrite(cfg)
    cfg.resume = True
    refuse_to_overwrite(cfg)
    assert (tmp_path / 'epoch_1.pth').read_bytes() == b'earlier run'


@pytest.mark.slow  # tools/train.py as a script
def test_train_tool_refuses_before_creating_anything(tmp_path):
    """--amp on this CPU machine and a work dir with checkpoints: refused,
    and nothing is written (no log folder, the checkpoint untouched)."""
    env = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES='')

    def train(*args):
        return subprocess.run([
            sys.executable,
            tool('train.py'),
            osp.join(ROOT, DEMO['voc']), *args
        ],
                              cwd=tmp_path,
                              capture_output=True,
                              text=True,
                              env=env)

    proc = train('--work-dir', str(tmp_path / 'wd_amp'), '--amp')
    assert proc.returncode != 0 and 'needs a CUDA GPU' in proc.stderr
    assert not (tmp_path / 'wd_amp').exists()
    wd = tmp_path / 'wd'
    wd.mkdir()
    (wd / 'epoch_3.pth').write_bytes(b'earlier run')
    proc = train('--work-dir', str(wd))
    assert proc.returncode != 0 and 'epoch_3.pth' in proc.stderr
    assert os.listdir(wd) == ['epoch_3.pth']


def test_distributed_port_in_use_is_named(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            ['bash', tool('dist_train.sh'), DEMO['voc'], '1'],
            capture_output=True,
            text=True,
            env=dict(os.environ, PORT=str(port), PYTHON=sys.executable),
            timeout=60)
    assert proc.returncode == 1
    assert f'PORT={port} is already in use' in proc.stderr


def test_a_node_says_which_nodes_it_waits_for():
    # PYTHON=true: the launch itself does nothing
    proc = subprocess.run(
        ['bash', tool('dist_train.sh'), DEMO['voc'], '1'],
        capture_output=True,
        text=True,
        env=dict(
            os.environ,
            NNODES='3',
            NODE_RANK='1',
            MASTER_ADDR='host0',
            PORT='29555',
            PYTHON='true'),
        timeout=60)
    assert 'node 1 of 3: waiting at host0:29555 for the nodes with ' \
        'NODE_RANK 0 2 to join' in proc.stderr


def test_voc_metric_prints_the_data_sets_class_names(monkeypatch):
    from mmdet.evaluation.functional import mean_ap
    from mmengine.registry import init_default_scope

    from dtl_mm.evaluation.metrics.voc_class_names_metric import \
        VOCClassNamesMetric
    printed = []
    monkeypatch.setattr(mean_ap, 'print_log',
                        lambda msg, *a, **k: printed.append(str(msg)))
    cfg = load_config(osp.join(ROOT, DEMO['voc']))
    assert cfg.val_evaluator.type == 'VOCClassNamesMetric'
    init_default_scope('mmdet')
    metric = VOCClassNamesMetric(metric='mAP', eval_mode='11points')
    classes = ('square', 'circle', 'triangle')
    metric.dataset_meta = dict(classes=classes, dataset_type='VOC2007')
    box = np.array([[10, 10, 50, 50]], dtype=np.float32)
    gt = dict(
        labels=np.array([0]),
        bboxes=box,
        bboxes_ignore=np.zeros((0, 4), np.float32),
        labels_ignore=np.zeros(0, np.int64))
    pred = [np.hstack([box, [[0.9]]]).astype(np.float32)] + \
        [np.zeros((0, 5), np.float32)] * 2
    result = metric.compute_metrics([(gt, pred)])
    assert result['mAP'] == pytest.approx(1.0)
    table = '\n'.join(printed)
    assert all(c in table for c in classes) and 'aeroplane' not in table
    # the dataset_type is restored after the table
    assert metric.dataset_meta['dataset_type'] == 'VOC2007'
