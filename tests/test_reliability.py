"""Faults, bad input and interrupted runs (issue 5): nothing is lost, every
failure names the file or field."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint
from swin_utils import TINY, plain_swin

from dtl_mm.atomic_io import AtomicLocalBackend
from dtl_mm.checkpoint import load_checkpoint_file
from dtl_mm.models import CheckpointLayoutError, DTLSwinTransformer
from dtl_mm.preflight import DataError, check_config_data, check_model_config
from dtl_mm.toy_data import MAKERS
from tool_utils import DEMO, ROOT, SHORT, run_tool, tool


def toy(tmp_path, monkeypatch, name, **kw):
    """Toy data of one task under tmp_path/data/toy, the working folder
    (the demo configs use data/toy/... relative paths)."""
    monkeypatch.chdir(tmp_path)
    MAKERS[name](str(tmp_path / 'data' / 'toy' / name), n_train=4, n_val=2,
                 **kw)
    return Config.fromfile(osp.join(ROOT, DEMO[name]))


# ---------------------------------------------------------------- bad data
def test_clean_toy_data_passes(tmp_path, monkeypatch):
    for name in DEMO:
        check_config_data(toy(tmp_path, monkeypatch, name),
                          ('train', 'val', 'test'))


def test_missing_image(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    os.remove('data/toy/coco/train2017/000000000002.jpg')
    with pytest.raises(DataError, match=r'missing.*000000000002\.jpg'):
        check_config_data(cfg, ('train', ))


def test_annotation_file_not_json(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    ann = 'data/toy/coco/annotations/instances_val2017.json'
    open(ann, 'w').write('{"images": [')
    with pytest.raises(DataError, match='instances_val2017.json: not valid '
                       'JSON'):
        check_config_data(cfg, ('val', ))


def test_unknown_category(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'coco')
    ann = 'data/toy/coco/annotations/instances_train2017.json'
    data = json.load(open(ann))
    data['annotations'][0]['category_id'] = 99
    json.dump(data, open(ann, 'w'))
    with pytest.raises(DataError, match='unknown category_id 99'):
        check_config_data(cfg, ('train', ))


def test_voc_xml_broken_and_unknown_class(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'voc')
    ann_dir = 'data/toy/voc/VOCdevkit/VOC2012/Annotations/'
    xml = ann_dir + sorted(os.listdir(ann_dir))[0]
    good = open(xml).read()
    open(xml, 'w').write(good.replace('<name>', '<name>hexagon', 1))
    with pytest.raises(DataError, match="unknown class 'hexagon"):
        check_config_data(cfg, ('train', ))
    open(xml, 'w').write(good[:len(good) // 2])
    with pytest.raises(DataError, match=osp.basename(xml) + ': not valid '
                       'XML'):
        check_config_data(cfg, ('train', ))


def test_segmentation_label_out_of_range(tmp_path, monkeypatch):
    cfg = toy(tmp_path, monkeypatch, 'ade20k')
    seg_dir = 'data/toy/ade20k/ADEChallengeData2016/annotations/validation/'
    seg = seg_dir + sorted(os.listdir(seg_dir))[0]
    label = cv2.imread(seg, cv2.IMREAD_UNCHANGED)
    label[0, :5] = 200  # ADE20K has 150 classes (values 1..150)
    cv2.imwrite(seg, label)
    with pytest.raises(DataError, match=r'label values \[200\]'):
        check_config_data(cfg, ('val', ))
    label[0, :5] = 255  # the ignore value is fine
    cv2.imwrite(seg, label)
    check_config_data(cfg, ('val', ))
    os.remove(seg)
    with pytest.raises(DataError, match='label map missing'):
        check_config_data(cfg, ('val', ))


def test_train_tool_fails_before_training_on_bad_data(tmp_path,
                                                      monkeypatch):
    toy(tmp_path, monkeypatch, 'coco')
    os.remove('data/toy/coco/val2017/000000000001.jpg')
    proc = subprocess.run(
        [sys.executable, tool('train.py'), osp.join(ROOT, DEMO['coco']),
         '--work-dir', 'wd'], cwd=tmp_path, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert proc.returncode != 0
    assert 'DataError' in proc.stderr and '000000000001.jpg' in proc.stderr
    assert not osp.exists(tmp_path / 'wd')  # no work started


# ------------------------------------------------------------- bad configs
def test_out_indices_must_match_neck(tmp_path):
    cfg = Config.fromfile(osp.join(ROOT, DEMO['voc']))
    check_model_config(cfg)
    cfg.model.backbone.out_indices = (0, 1, 2)
    with pytest.raises(ValueError, match='neck.in_channels'):
        check_model_config(cfg)
    cfg = Config.fromfile(osp.join(ROOT, DEMO['ade20k']))
    cfg.model.decode_head.in_channels = [32, 64, 128]
    with pytest.raises(ValueError, match='decode_head.in_channels'):
        check_model_config(cfg)


def test_dtl_on_too_shallow_backbone():
    with pytest.raises(ValueError, match='`first_g_block`'):
        DTLSwinTransformer(variant='dtlv2', first_g_block=13, **TINY)


def test_swin_b_weights_into_swin_l_config(tmp_path):
    small = plain_swin()  # embed 16 stands in for Swin-B, 24 for Swin-L
    path = str(tmp_path / 'b.pth')
    torch.save({'state_dict': small.state_dict()}, path)
    model = DTLSwinTransformer(
        init_cfg=dict(type='Pretrained', checkpoint=path),
        **dict(TINY, embed_dims=24))
    with pytest.raises(CheckpointLayoutError,
                       match=r'patch_embed.projection.weight: checkpoint '
                       r'\(16, 3, 4, 4\) vs model \(24, 3, 4, 4\)'):
        model.init_weights()


# ------------------------------------------------------ checkpoint writing
def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, path)

    def crash(fd):  # the process dies after writing, before the rename
        raise KeyboardInterrupt('killed mid-save')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'],
                       torch.ones(3))
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temp file left
    assert isinstance(
        __import__('mmengine').fileio.get_file_backend(path),
        AtomicLocalBackend)


def test_killed_save_never_leaves_a_truncated_file(tmp_path):
    path = tmp_path / 'big.pth'
    code = ('import dtl_mm, torch, sys\n'
            'from mmengine.runner.checkpoint import save_checkpoint\n'
            'print("go", flush=True)\n'
            f'save_checkpoint({{"w": torch.randn(120_000_000)}}, {str(path)!r})\n')
    proc = subprocess.Popen([sys.executable, '-c', code],
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.readline().strip() == 'go'
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the write is under way
        if any(f.name.endswith('.tmp') for f in tmp_path.iterdir()):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not path.exists()  # whole or nothing: here nothing


# ------------------------------------------------ interruption and resume
def test_killed_and_resumed_run_equals_straight_run(tmp_path):
    for name in ('voc', ):
        MAKERS[name](str(tmp_path / 'data' / 'toy' / name), n_train=8,
                     n_val=2)
    opts = ['--cfg-options', 'train_cfg.max_epochs=2',
            'default_hooks.checkpoint.interval=1', 'randomness.seed=1',
            'train_dataloader.batch_size=2']
    cfg = osp.join(ROOT, DEMO['voc'])
    run_tool(tmp_path, tool('train.py'), cfg, '--work-dir', 'straight',
             *opts)

    killed = tmp_path / 'killed'
    proc = subprocess.Popen(
        [sys.executable, tool('train.py'), cfg, '--work-dir', str(killed),
         *opts], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=ROOT),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        last = killed / 'last_checkpoint'
        if last.exists() and last.read_text().endswith('epoch_1.pth'):
            break
        time.sleep(0.05)
    assert proc.poll() is None, 'the run ended before it could be killed'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / 'epoch_2.pth').exists()
    out = run_tool(tmp_path, tool('train.py'), cfg, '--work-dir',
                   str(killed), '--resume', *opts)
    assert 'resumed epoch: 1, iter: 4' in out

    a = torch.load(tmp_path / 'straight' / 'epoch_2.pth', weights_only=False)
    b = torch.load(killed / 'epoch_2.pth', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == 8
    trainable = [k for k in a['state_dict'] if 'swin.' not in k]
    assert trainable
    # CPU kernels are deterministic for a fixed thread count: exact equality
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k


def trained_voc(tmp_path):
    """One short VOC demo run in tmp_path/wd: (config path, work dir)."""
    MAKERS['voc'](str(tmp_path / 'data' / 'toy' / 'voc'), n_train=8,
                  n_val=2)
    cfg = osp.join(ROOT, DEMO['voc'])
    wd = tmp_path / 'wd'
    run_tool(tmp_path, tool('train.py'), cfg, '--work-dir', str(wd),
             '--cfg-options', *SHORT['voc'])
    return cfg, wd


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg, wd = trained_voc(tmp_path)
    good = (wd / 'epoch_1.pth').read_bytes()
    proc = subprocess.run(
        [sys.executable, tool('train.py'), cfg, '--work-dir', str(wd),
         '--resume', '--cfg-options', 'train_cfg.max_epochs=2',
         'model.bbox_head.loss_cls.loss_weight=nan'],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert 'non-finite loss (nan) at iteration 3 (epoch 2)' in proc.stderr
    assert 'epoch_1.pth' in proc.stderr.split('non-finite loss')[1]
    assert not (wd / 'epoch_2.pth').exists()
    assert (wd / 'last_checkpoint').read_text().endswith('epoch_1.pth')
    assert (wd / 'epoch_1.pth').read_bytes() == good


# ------------------------------------------------ checkpoints at test time
def test_checkpoint_without_frozen_backbone_is_refused(tmp_path):
    cfg, wd = trained_voc(tmp_path)
    full = torch.load(wd / 'epoch_1.pth', weights_only=False)
    sd = full['state_dict']
    lean = {k: v for k, v in sd.items() if '.swin.' not in k}
    torch.save({'state_dict': lean, 'meta': full['meta']},
               tmp_path / 'lean.pth')
    proc = subprocess.run(
        [sys.executable, tool('test.py'), cfg, str(tmp_path / 'lean.pth')],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert 'lacks' in proc.stderr and 'Swin backbone weights' in \
        proc.stderr and '--backbone-from-pretrained' in proc.stderr

    # the remedy it names: the frozen Swin from the pretrained file
    swin = {k[len('backbone.'):]: v for k, v in sd.items()
            if k.startswith('backbone.swin.')}
    torch.save({'state_dict': swin}, tmp_path / 'swin.pth')
    out = run_tool(tmp_path, tool('test.py'), cfg, str(tmp_path / 'lean.pth'),
                   '--backbone-from-pretrained', str(tmp_path / 'swin.pth'))
    assert 'pascal_voc/mAP' in out


# ------------------------------------------------------------ distributed
def dist_cmd(wd, *opts):
    return ['bash', tool('dist_train.sh'), osp.join(ROOT, DEMO['voc']), '2',
            '--work-dir', str(wd), '--cfg-options', *opts]


def test_killing_one_rank_ends_the_others(tmp_path):
    MAKERS['voc'](str(tmp_path / 'data' / 'toy' / 'voc'), n_train=8,
                  n_val=2)
    wd = tmp_path / 'wd'
    proc = subprocess.Popen(
        dist_cmd(wd, 'train_cfg.max_epochs=50',
                 'train_dataloader.batch_size=1',
                 'default_hooks.logger.interval=1'),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
        env=dict(os.environ, PYTHONPATH=ROOT, PYTHON=sys.executable,
                 PORT='29531', OMP_NUM_THREADS='1',
                 DTL_MM_DIST_TIMEOUT='60'))

    def workers():
        """torchrun's worker processes (each in a session of its own)."""
        out = subprocess.run(['pgrep', '-P', str(proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    ranks = []
    try:
        deadline = time.time() + 300
        victim = None
        while time.time() < deadline and victim is None:
            logs = list(wd.glob('*/*.log'))
            if logs and 'Epoch(train)' in logs[0].read_text():
                victim = next((p for p in workers() if 'LOCAL_RANK=1\0' in
                               open(f'/proc/{p}/environ').read()), None)
            time.sleep(0.2)
        assert victim, 'rank 1 never started training'
        ranks = workers()
        os.kill(victim, signal.SIGKILL)
        t = time.time()
        proc.communicate(timeout=180)
        assert proc.returncode != 0
        assert time.time() - t < 180
    finally:
        ranks = ranks or workers()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(1)
        alive = [p for p in ranks if osp.exists(f'/proc/{p}')]
        for p in alive:  # leave no strays behind, whatever happened
            os.kill(p, signal.SIGKILL)
    assert not alive, 'a rank outlived the launcher'
