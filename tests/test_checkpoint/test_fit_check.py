"""The fit check revises a checkpoint's keys as mmengine will load them
(Runner.load_checkpoint's default: a DDP ``module.`` prefix dropped)."""
import pytest
import torch

from dtl_mm.apis.runner_setup import build_model
from dtl_mm.checkpoint.fit_check import (check_checkpoint_fits,
                                         revise_keys_as_mmengine)
from dtl_mm.checkpoint.safe_load import CheckpointError
from helpers.multitask_utils import config


def test_revision_is_mmengines_default():
    assert revise_keys_as_mmengine({
        'module.backbone.x': 1,
        'backbone.module.y': 2
    }) == {
        'backbone.x': 1,
        'backbone.module.y': 2
    }


def test_a_ddp_saved_checkpoint_fits_and_a_short_one_is_named(tmp_path):
    model = build_model(config('voc'))
    state = {'module.' + k: v for k, v in model.state_dict().items()}
    check_checkpoint_fits(model, {'state_dict': state}, 'ddp.pth')
    # a head weight of another shape: refused, naming the file and key
    key = next(k for k in state if k.startswith('module.neck.'))
    state[key] = torch.zeros(1)
    with pytest.raises(
            CheckpointError, match=f'other.pth does not fit.*{key[7:]}'):
        check_checkpoint_fits(model, {'state_dict': state}, 'other.pth')
