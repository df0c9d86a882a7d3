"""Checkpoint files for the tests: small Swin files, lean checkpoints, a
file that would run code; running a tool that must fail."""
import os
import subprocess
import sys

import torch

from dtl_mm.apis.runner_setup import build_model
from dtl_mm.models.swin_presets import TINY_SWIN
from helpers.multitask_utils import config
from helpers.swin_utils import plain_swin
from helpers.tool_utils import ROOT

VOC_SWIN = dict(out_indices=(1, 2, 3))  # the VOC demo config's outputs


def swin_file(path, seed):
    torch.manual_seed(seed)
    swin = plain_swin(**VOC_SWIN)
    torch.save({'state_dict': swin.state_dict()}, path)
    return str(path)


def voc_config(pretrained, **backbone):
    cfg = config('voc', **backbone)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=pretrained)
    return cfg


def lean_checkpoint(tmp_path, pretrained, **backbone):
    """A lean checkpoint of the VOC demo model trained from ``pretrained``,
    saved as the runner saves it (the training config in meta['cfg'])."""
    cfg = voc_config(pretrained, **backbone)
    model = build_model(cfg)
    model.backbone.init_weights()
    path = str(tmp_path / 'lean.pth')
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(cfg=cfg.pretty_text),
            message_hub={},
            optimizer={}), path)
    return path, model


# the VOC demo config's small Swin
DEMO_SWIN = dict(TINY_SWIN, out_indices=(1, 2, 3))


def file_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


class RunsCode:

    def __reduce__(self):
        return (os.system, ('touch PWNED_BY_CHECKPOINT', ))


# ------------------------------------------- trained runs, full and lean
def run_failing(ws, script, *args, env=None):
    proc = subprocess.run([sys.executable, script, *args],
                          cwd=ws,
                          capture_output=True,
                          text=True,
                          timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))
    assert proc.returncode != 0, proc.stdout[-2000:]
    return proc.stdout + proc.stderr


def save(tmp_path, name, obj):
    """``obj`` saved as ``tmp_path/name`` by torch; the path."""
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path
