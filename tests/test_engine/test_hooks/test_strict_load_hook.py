"""StrictLoadHook: resuming needs the training state."""
import types

import pytest
import torch

from dtl_mm.checkpoint.safe_load import CheckpointError
from dtl_mm.engine.hooks import StrictLoadHook
from helpers.checkpoint_utils import lean_checkpoint, swin_file, voc_config


def test_resume_from_a_checkpoint_without_training_state(tmp_path):
    pretrained = swin_file(tmp_path / 's.pth', 0)
    lean, model = lean_checkpoint(tmp_path, pretrained)
    stripped = {
        k: v
        for k, v in torch.load(lean).items() if k in ('meta', 'state_dict')
    }
    runner = types.SimpleNamespace(
        model=model,
        cfg=voc_config(pretrained),
        _resume=True,
        _train_loop=None)
    with pytest.raises(
            CheckpointError,
            match='holds no training state.*--strip-optimizer.*load_from='):
        StrictLoadHook().after_load_checkpoint(runner, stripped)
    StrictLoadHook().after_load_checkpoint(runner, torch.load(lean))
