"""DTLRunner: checks before anything is built, safe and checked loading,
the config's checkpointed parts."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.registry import RUNNERS

from dtl_mm.checkpoint.safe_load import CheckpointError
from dtl_mm.engine.runner import DTLRunner
from helpers.checkpoint_utils import (RunsCode, lean_checkpoint, swin_file,
                                      voc_config)


def runner_for(cfg, work_dir, **extra):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    cfg.update(extra)
    return RUNNERS.build(cfg)


def test_configs_select_it_by_runner_type(tmp_path):
    pretrained = swin_file(tmp_path / 's.pth', 0)
    runner = runner_for(voc_config(pretrained), tmp_path / 'wd')
    assert type(runner) is DTLRunner


def test_mmengine_checkpointing_key_refused_before_anything_is_built(tmp_path):
    cfg = voc_config(swin_file(tmp_path / 's.pth', 0))
    with pytest.raises(
            ValueError,
            match=r"activation_checkpointing=\['neck'\].*"
            r"reentrant.*checkpointed_parts=\['neck'\]"):
        runner_for(cfg, tmp_path / 'wd', activation_checkpointing=['neck'])
    assert not osp.exists(tmp_path / 'wd')  # not even the work dir


def test_resume_needs_the_training_state(tmp_path):
    pretrained = swin_file(tmp_path / 's.pth', 0)
    lean, _ = lean_checkpoint(tmp_path, pretrained)
    full = torch.load(lean)
    stripped = tmp_path / 'stripped.pth'
    torch.save({k: full[k] for k in ('meta', 'state_dict')}, stripped)
    runner = runner_for(
        voc_config(pretrained), tmp_path / 'wd', resume=True, load_from=None)
    with pytest.raises(
            CheckpointError,
            match='holds no training state.*--strip-optimizer.*load_from='):
        runner.load_checkpoint(str(stripped))
    runner.load_checkpoint(lean)  # the training checkpoint loads


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    pretrained = swin_file(tmp_path / 's.pth', 0)
    lean, _ = lean_checkpoint(tmp_path, pretrained)
    other = torch.load(lean)
    other['state_dict'] = {
        k.replace('bbox_head', 'box_head'): v
        for k, v in other['state_dict'].items()
    }
    path = tmp_path / 'other.pth'
    torch.save(other, path)
    runner = runner_for(voc_config(pretrained), tmp_path / 'wd')
    with pytest.raises(CheckpointError, match='does not fit'):
        runner.load_checkpoint(str(path))


def test_a_code_running_load_from_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the file's code would leave a mark
    pretrained = swin_file(tmp_path / 's.pth', 0)
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': RunsCode()}, evil)
    runner = runner_for(voc_config(pretrained), tmp_path / 'wd')
    with pytest.raises(CheckpointError, match='refused to load'):
        runner.load_checkpoint(evil)
    assert not osp.exists(tmp_path / 'PWNED_BY_CHECKPOINT')


def test_data_check_before_the_loop_and_its_config_switch(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/toy here
    cfg = voc_config(swin_file(tmp_path / 's.pth', 0))
    with pytest.raises(FileNotFoundError, match='toy data set not found'):
        runner_for(cfg, tmp_path / 'wd').val()
    with pytest.raises(Exception) as skipped:  # the dataset's own error
        runner_for(cfg, tmp_path / 'wd2', check_data=False).val()
    assert 'toy data set not found' not in str(skipped.value)
