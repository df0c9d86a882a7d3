"""Resuming: finding the last checkpoint, refusing what cannot be resumed,
refusing to overwrite a work dir."""
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import save_checkpoint

from dtl_mm.apis.runner_setup import load_config
from dtl_mm.checkpoint import resume
from dtl_mm.checkpoint.resume import latest_checkpoint, refuse_to_overwrite
from dtl_mm.testing.toy_data import MAKERS
from helpers.tool_utils import DEMO, ROOT, own_copy, run_tool, tool


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


# ------------------------------------------------ interruption and resume
@pytest.mark.slow
def test_killed_and_resumed_run_equals_straight_run(toy, tmp_path):
    for name in ('voc', ):
        MAKERS[name](str(tmp_path / 'data' / 'toy' / name), n_train=8, n_val=2)
    opts = [
        '--cfg-options', 'train_cfg.max_epochs=2',
        'default_hooks.checkpoint.interval=1', 'randomness.seed=1',
        'train_dataloader.batch_size=2'
    ]
    cfg = osp.join(ROOT, DEMO['voc'])
    run_tool(tmp_path, tool('train.py'), cfg, '--work-dir', 'straight', *opts)

    killed = tmp_path / 'killed'
    proc = subprocess.Popen([
        sys.executable,
        tool('train.py'), cfg, '--work-dir',
        str(killed), *opts
    ],
                            cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline, saved = time.time() + 300, False
    while not saved and time.time() < deadline and proc.poll() is None:
        last = killed / 'last_checkpoint'
        saved = last.exists() and last.read_text().endswith('epoch_1.pth')
        time.sleep(0.05)
    try:
        assert saved, 'epoch 1 was not saved within 300 s'
        assert proc.poll() is None, 'the run ended before it could be killed'
    finally:
        proc.kill()
        proc.wait()
    assert not (killed / 'epoch_2.pth').exists()
    out = run_tool(tmp_path, tool('train.py'), cfg, '--work-dir', str(killed),
                   '--resume', *opts)
    assert 'resumed epoch: 1, iter: 4' in out

    a = torch.load(tmp_path / 'straight' / 'epoch_2.pth', weights_only=False)
    b = torch.load(killed / 'epoch_2.pth', weights_only=False)
    assert a['meta']['iter'] == b['meta']['iter'] == 8
    trainable = [k for k in a['state_dict'] if 'swin.' not in k]
    assert trainable
    # CPU kernels are deterministic for a fixed thread count: exact equality
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k
    # the optimizer state too: AdamW's moments went on from epoch 1's
    state = a['optimizer']['state']
    assert state.keys() == b['optimizer']['state'].keys()
    for pid, s in state.items():
        for name in ('step', 'exp_avg', 'exp_avg_sq'):
            assert torch.equal(
                torch.as_tensor(s[name]),
                torch.as_tensor(b['optimizer']['state'][pid][name])), (pid,
                                                                       name)


def test_resume_without_checkpoint_says_so(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(resume, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    for wd in (tmp_path / 'typo', tmp_path / 'empty'):
        os.makedirs(tmp_path / 'empty', exist_ok=True)
        cfg = Config(dict(work_dir=str(wd), load_from='detector.pth'))
        resume.resume_from(cfg, 'auto')
        assert cfg.resume is False and cfg.load_from == 'detector.pth'
    out = '\n'.join(logged)
    assert f'the work dir {tmp_path / "typo"} does not exist); training ' \
        f'starts from scratch' in out
    assert f'no epoch_*.pth / iter_*.pth in {tmp_path / "empty"}); ' \
        f'training starts from scratch' in out
    with pytest.raises(
            FileNotFoundError, match='--resume: checkpoint not '
            'found: nope.pth'):
        resume.resume_from(cfg, 'nope.pth')


def test_empty_or_dangling_last_checkpoint(tmp_path):
    wd = tmp_path / 'wd'
    wd.mkdir()
    last = wd / 'last_checkpoint'
    last.write_text('')
    assert latest_checkpoint(str(wd)) == (
        None, f'{last} is empty and no epoch_*.pth / iter_*.pth in {wd}')
    for n in (1, 2):
        save_checkpoint({'state_dict': {}}, str(wd / f'epoch_{n}.pth'))
        time.sleep(0.01)
    path, note = latest_checkpoint(str(wd))
    assert path == str(wd / 'epoch_2.pth')
    assert note == f'{last} is empty; the newest checkpoint file is used'
    last.write_text('/gone/epoch_7.pth')
    path, note = latest_checkpoint(str(wd))
    assert path == str(wd / 'epoch_2.pth') and 'names /gone/epoch_7.pth, ' \
        'which does not exist' in note
    last.write_text('/moved/epoch_1.pth')  # the work dir was moved
    assert latest_checkpoint(str(wd))[0] == str(wd / 'epoch_1.pth')


@pytest.mark.slow
def test_resume_from_another_models_checkpoint(voc_run, tmp_path):
    cfg, wd = own_copy(voc_run, tmp_path)
    ckpt = torch.load(wd / 'epoch_1.pth', weights_only=False)
    sd = ckpt['state_dict']
    # a segmentor's weights where the detector's head was
    ckpt['state_dict'] = {
        k.replace('bbox_head.', 'decode_head.'): v
        for k, v in sd.items()
    }
    other = tmp_path / 'upernet_epoch_4.pth'
    torch.save(ckpt, other)
    good = (wd / 'epoch_1.pth').read_bytes()
    proc = subprocess.run([
        sys.executable,
        tool('train.py'), cfg, '--work-dir',
        str(wd), '--resume',
        str(other), '--cfg-options', 'train_cfg.max_epochs=2'
    ],
                          cwd=voc_run[1].parent,
                          capture_output=True,
                          text=True,
                          timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert f'{other} does not fit this model' in proc.stderr
    assert 'decode_head.' in proc.stderr
    assert 'weight(s) of the model are missing' in proc.stderr
    assert 'different number of parameter groups' not in proc.stderr
    assert (wd / 'epoch_1.pth').read_bytes() == good
    assert (wd / 'last_checkpoint').read_text() == str(wd / 'epoch_1.pth')


def test_copied_work_dir_resumes_from_its_own_checkpoint(tmp_path):
    """A work dir copied as a whole still names the original's file in
    last_checkpoint: the copy resumes from its own copy, and says so; a
    last_checkpoint naming a file elsewhere with no copy here is named."""
    import shutil
    original = tmp_path / 'original'
    original.mkdir()
    (original / 'epoch_1.pth').write_bytes(b'weights')
    (original / 'last_checkpoint').write_text(str(original / 'epoch_1.pth'))
    copy = tmp_path / 'copy'
    shutil.copytree(original, copy)
    ckpt, note = latest_checkpoint(str(copy))
    assert ckpt == str(copy / 'epoch_1.pth')
    assert str(original / 'epoch_1.pth') in note and 'copied' in note
    assert latest_checkpoint(str(original)) == (str(original / 'epoch_1.pth'),
                                                '')
    os.remove(copy / 'epoch_1.pth')
    ckpt, note = latest_checkpoint(str(copy))
    assert ckpt == str(original / 'epoch_1.pth')
    assert 'outside the work dir' in note


def test_incomplete_last_checkpoint_falls_back_to_the_one_before(
        tmp_path, monkeypatch):
    """--resume with a last checkpoint cut short while saving: the newest
    complete one is used, and the log says which and why."""
    wd = tmp_path / 'wd'
    wd.mkdir()
    torch.save({'w': torch.ones(3)}, wd / 'epoch_1.pth')
    torch.save({'w': torch.ones(3)}, wd / 'epoch_2.pth')
    data = (wd / 'epoch_2.pth').read_bytes()
    (wd / 'epoch_2.pth').write_bytes(data[:len(data) // 2])
    os.utime(wd / 'epoch_1.pth', (1, 1))  # the older one
    (wd / 'last_checkpoint').write_text(str(wd / 'epoch_2.pth'))
    logged = []
    monkeypatch.setattr(resume, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    cfg = Config(dict(work_dir=str(wd)))
    resume.resume_from(cfg, 'auto')
    assert cfg.resume and cfg.load_from == str(wd / 'epoch_1.pth')
    assert f'{wd / "epoch_2.pth"} is incomplete' in logged[-1]
    assert str(wd / 'epoch_1.pth') in logged[-1]
