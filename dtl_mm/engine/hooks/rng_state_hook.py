"""Saves and restores the RNG states with each checkpoint."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .runner_state import is_resuming


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the torch / numpy / python RNG states in each checkpoint and
    restores them on resume, so an interrupted-and-resumed run draws the same
    random numbers (RoI sampling, augmentation) as an uninterrupted one."""

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['rng_state'] = dict(
            torch=torch.get_rng_state(),
            numpy=np.random.get_state(),
            python=random.getstate())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint['rng_state']['cuda'] = torch.cuda.get_rng_state_all()

    def after_load_checkpoint(self, runner, checkpoint):
        state = checkpoint.get('rng_state')
        if state is None or not is_resuming(runner):
            return
        torch.set_rng_state(state['torch'])
        np.random.set_state(state['numpy'])
        random.setstate(state['python'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
