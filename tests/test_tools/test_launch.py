"""tools/train.py and the launchers: refusing bad data and bad launches
before any work starts, one rank failing ends the others."""
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest

from dtl_mm.testing.toy_data import MAKERS
from helpers.tool_utils import (DEMO, ROOT, SHORT, dist_cmd, dist_env,
                                dist_train, tool)


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


@pytest.mark.slow
def test_train_tool_fails_before_training_on_bad_data(toy, tmp_path):
    toy('coco')
    os.remove('data/toy/coco/val2017/000000000001.jpg')
    proc = subprocess.run([
        sys.executable,
        tool('train.py'),
        osp.join(ROOT, DEMO['coco']), '--work-dir', 'wd'
    ],
                          cwd=tmp_path,
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT),
                          timeout=300)
    assert proc.returncode != 0
    assert 'DataError' in proc.stderr and '000000000001.jpg' in proc.stderr
    assert not osp.exists(tmp_path / 'wd')  # no work started


@pytest.mark.slow
def test_distributed_run_stops_on_bad_data(toy, tmp_path):
    MAKERS['voc'](str(tmp_path / 'data' / 'toy' / 'voc'), n_train=4, n_val=2)
    os.remove(tmp_path / 'data/toy/voc/VOCdevkit/VOC2007/JPEGImages/'
              '2007_test_000001.jpg')
    rc, out = dist_train(tmp_path, tmp_path / 'wd', *SHORT['voc'], timeout=300)
    assert rc != 0
    assert out.count('checking the train/val data files') == 1, out[-3000:]
    assert 'DataError' in out and '2007_test_000001.jpg' in out
    assert not (tmp_path / 'wd').exists()


# ------------------------------------------------------------ distributed
@pytest.mark.slow
def test_killing_one_rank_ends_the_others(toy, tmp_path):
    MAKERS['voc'](str(tmp_path / 'data' / 'toy' / 'voc'), n_train=8, n_val=2)
    wd = tmp_path / 'wd'
    proc = subprocess.Popen(
        dist_cmd(wd, 'train_cfg.max_epochs=50',
                 'train_dataloader.batch_size=1',
                 'default_hooks.logger.interval=1'),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=dist_env(DTL_MM_DIST_TIMEOUT='60'))

    def workers():
        """torchrun's worker processes (each in a session of its own)."""
        out = subprocess.run(['pgrep', '-P', str(proc.pid)],
                             capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    ranks = []
    try:
        deadline = time.time() + 300
        victim = None
        while time.time() < deadline and victim is None:
            logs = list(wd.glob('*/*.log'))
            if logs and 'Epoch(train)' in logs[0].read_text():
                victim = next(
                    (p for p in workers()
                     if 'LOCAL_RANK=1\0' in open(f'/proc/{p}/environ').read()),
                    None)
            time.sleep(0.2)
        assert victim, 'rank 1 never started training'
        ranks = workers()
        os.kill(victim, signal.SIGKILL)
        try:
            out, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail('180 s after rank 1 was killed the launcher still '
                        'ran: the other rank was not ended')
        assert proc.returncode != 0, out[-3000:]
    finally:
        ranks = ranks or workers()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(1)
        alive = [p for p in ranks if osp.exists(f'/proc/{p}')]
        for p in alive:  # leave no strays behind, whatever happened
            os.kill(p, signal.SIGKILL)
    assert not alive, 'a rank outlived the launcher'
