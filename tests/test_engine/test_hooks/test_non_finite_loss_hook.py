"""NonFiniteLossHook: non-finite losses and weights stop the run, the last
good checkpoint is kept."""
import os
import re
import subprocess
import sys
import time

import pytest
import torch
from mmengine.runner.checkpoint import save_checkpoint

from dtl_mm.engine.hooks import NonFiniteLossHook
from helpers.hook_utils import FakeRunner
from helpers.tool_utils import ROOT, own_copy, tool


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_last_good_checkpoint(voc_run, tmp_path):
    cfg, wd = own_copy(voc_run, tmp_path)
    good = (wd / 'epoch_1.pth').read_bytes()
    proc = subprocess.run([
        sys.executable,
        tool('train.py'), cfg, '--work-dir',
        str(wd), '--resume', '--cfg-options', 'train_cfg.max_epochs=2',
        'model.bbox_head.loss_cls.loss_weight=nan'
    ],
                          cwd=voc_run[1].parent,
                          capture_output=True,
                          text=True,
                          timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    # plain SGD-style training: the NaN reaches the weights at once, so
    # there is no waiting for more non-finite losses
    assert 'non-finite loss (nan) at iteration 3 (epoch 2), and' in \
        proc.stderr and 'trainable weights are now non-finite' in proc.stderr
    assert 'epoch_1.pth' in proc.stderr.split('non-finite loss')[1]
    assert not (wd / 'epoch_2.pth').exists()
    assert (wd / 'last_checkpoint').read_text().endswith('epoch_1.pth')
    assert (wd / 'epoch_1.pth').read_bytes() == good


def test_nonfinite_loss_tolerates_skipped_steps(tmp_path):
    """Under AMP the loss scaler skips an overflowing step and the weights
    stay good: K non-finite losses in a row stop training, fewer do not."""
    model = torch.nn.Linear(2, 2)
    save_checkpoint({'state_dict': model.state_dict()},
                    str(tmp_path / 'epoch_1.pth'))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    hook, runner = NonFiniteLossHook(max_consecutive=3), FakeRunner(
        tmp_path, model)
    for loss in (1., float('inf'), float('nan'), 1., float('inf'),
                 float('inf')):
        runner.step(hook, loss)
    assert len(runner.warnings) == 4
    assert runner.warnings[1] == (
        'non-finite loss (nan) at iteration 3 (epoch 1): step skipped, the '
        'weights are still finite (2 of 3 in a row stop training)')
    with pytest.raises(
            FloatingPointError,
            match=r'non-finite loss \(inf\) '
            r'at iteration 7 \(epoch 1\), 3 iterations in a '
            r'row; training stopped. Last good checkpoint: ' +
            re.escape(str(tmp_path / 'epoch_1.pth')) + '$'):
        runner.step(hook, float('inf'))


def test_nonfinite_weights_stop_at_once_and_are_never_saved(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_checkpoint({'state_dict': model.state_dict()},
                    str(tmp_path / 'epoch_1.pth'))
    time.sleep(0.01)
    hook, runner = NonFiniteLossHook(), FakeRunner(tmp_path, model)
    with torch.no_grad():
        model.bias[1] = float('nan')
    # the loss lags the weights by a step: this save happens while the
    # loss still looks fine, and is refused
    with pytest.raises(
            FloatingPointError,
            match=r"refusing to save a "
            r"checkpoint at iteration 0: 1 trainable weights are"
            r" non-finite \(e.g. \['bias'\]\)"):
        hook.before_save_checkpoint(runner, {})
    # a checkpoint of blown-up weights (saved without the hook) is not
    # called good
    save_checkpoint({'state_dict': model.state_dict()},
                    str(tmp_path / 'epoch_2.pth'))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    with pytest.raises(FloatingPointError) as e:
        runner.step(hook, float('nan'))
    assert 'trainable weights are now non-finite' in str(e.value)
    assert f'Last good checkpoint: {tmp_path / "epoch_1.pth"}; newer ' \
        f'checkpoints with non-finite weights (do not resume from them): ' \
        f"['{tmp_path / 'epoch_2.pth'}']" in str(e.value)
