"""The tools refuse checkpoints they must not use: code-running files,
other models, stripped resumes, missing frozen trunks."""
import os
import os.path as osp
import re
import subprocess
import sys

import mmdet
import mmseg
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner.checkpoint import get_state_dict, save_checkpoint

from dtl_mm.checkpoint.safe_load import load_checkpoint_file
from helpers.checkpoint_utils import RunsCode, file_bytes, run_failing
from helpers.tool_utils import DEMO, ROOT, SHORT, run_tool, tool


@pytest.mark.slow  # tools/train.py and tools/test.py on a trained demo run
def test_tools_refuse_a_stripped_resume_and_another_layout(
        short_run, toy_workspace, tmp_path):
    ws, wd = toy_workspace, short_run('voc')
    ckpt = load_checkpoint_file(str(wd / 'epoch_1.pth'))
    stripped = tmp_path / 'stripped.pth'
    torch.save({k: ckpt[k] for k in ('meta', 'state_dict')}, stripped)
    voc = osp.join(ROOT, DEMO['voc'])
    out = run_failing(ws, tool('train.py'), voc, '--work-dir',
                      str(tmp_path / 'wd'), '--resume', str(stripped),
                      '--cfg-options', *SHORT['voc'], 'train_cfg.max_epochs=2')
    assert f'{stripped} holds no training state' in out
    assert f'load_from={stripped}' in out and 'KeyError' not in out
    out = run_failing(ws, tool('test.py'), voc, str(wd / 'epoch_1.pth'),
                      '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                      'model.backbone.beta=10.0')
    assert 'model.backbone.beta: trained with 100.0, configured 10.0' in out
    assert 'pascal_voc/mAP' not in out


@pytest.mark.slow
def test_tools_refuse_code_running_checkpoint_url(workspace, server,
                                                  torch_home):
    torch.save({'state_dict': {}, 'x': RunsCode()}, workspace / 'evil.pth')
    server.files['/evil.pth'] = file_bytes(workspace / 'evil.pth')
    url = server.url('/evil.pth')
    env = dict(TORCH_HOME=str(torch_home))
    for extra in (['--resume', url], ['--cfg-options', f'load_from={url}']):
        out = run_failing(
            workspace,
            tool('train.py'),
            osp.join(ROOT, DEMO['voc']),
            '--work-dir',
            str(workspace / 'evil_wd'),
            *extra,
            env=env)
        assert url in out and 'refused' in out
        assert 'Epoch(train)' not in out
    assert not (workspace / 'PWNED_BY_CHECKPOINT').exists()


@pytest.fixture(scope='module')
def workspace(toy_workspace):
    """The session's folder of toy data (conftest.toy_workspace)."""
    return toy_workspace


# ----------------------------------- checkpoints that do not fit, refused
def build_and_save(config, scope, path, **backbone):
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.model.backbone.update(backbone)
    init_default_scope(scope)
    model = MODELS.build(cfg.model)
    save_checkpoint({
        'meta': {},
        'state_dict': get_state_dict(model)
    }, str(path))


@pytest.mark.slow
def test_checkpoints_of_another_model_are_refused_everywhere(workspace):
    ws = workspace
    wide = ws / 'wide_backbone.pth'  # another embed width
    build_and_save(DEMO['voc'], 'mmdet', wide, embed_dims=48)
    segmentor = ws / 'segmentor.pth'  # the other task
    build_and_save(DEMO['ade20k'], 'mmseg', segmentor)
    detector = ws / 'detector.pth'
    build_and_save(DEMO['voc'], 'mmdet', detector)
    voc, ade = osp.join(ROOT, DEMO['voc']), osp.join(ROOT, DEMO['ade20k'])
    own_det = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')
    own_seg = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    cases = [
        (tool('test.py'), voc, wide, 'other shapes'),
        (tool('test.py'), voc, segmentor, 'decode_head'),
        (own_det, voc, segmentor, 'decode_head'),
        (own_det, voc, wide, 'other shapes'),
        (own_seg, ade, detector, 'bbox_head'),
    ]
    for script, cfg, ckpt, what in cases:
        out = run_failing(ws, script, cfg, str(ckpt), '--work-dir',
                          str(ws / 'refused'))
        assert f'{ckpt} does not fit this model' in out, out[-2000:]
        assert what in out
        assert not re.search(r'(pascal_voc/mAP|mIoU): [\d.]', out)
    out = run_failing(ws, tool('train.py'), voc, '--work-dir',
                      str(ws / 'refused_train'), '--cfg-options',
                      f'load_from={segmentor}', *SHORT['voc'])
    assert f'{segmentor} does not fit this model' in out
    assert 'Epoch(train)' not in out


# ------------------------------------------------ checkpoints at test time
@pytest.mark.slow
def test_checkpoint_without_frozen_backbone_is_refused(voc_run, tmp_path):
    cfg, wd = voc_run
    full = torch.load(wd / 'epoch_1.pth', weights_only=False)
    sd = full['state_dict']
    lean = {k: v for k, v in sd.items() if '.swin.' not in k}
    torch.save({
        'state_dict': lean,
        'meta': full['meta']
    }, tmp_path / 'lean.pth')
    proc = subprocess.run(
        [sys.executable,
         tool('test.py'), cfg,
         str(tmp_path / 'lean.pth')],
        cwd=wd.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert 'lacks' in proc.stderr and 'Swin backbone weights' in \
        proc.stderr and '--backbone-from-pretrained' in proc.stderr

    # the remedy it names: the frozen Swin from the pretrained file
    swin = {
        k[len('backbone.'):]: v
        for k, v in sd.items() if k.startswith('backbone.swin.')
    }
    torch.save({'state_dict': swin}, tmp_path / 'swin.pth')
    out = run_tool(wd.parent, tool('test.py'), cfg, str(tmp_path / 'lean.pth'),
                   '--backbone-from-pretrained', str(tmp_path / 'swin.pth'))
    assert 'pascal_voc/mAP' in out


@pytest.mark.slow  # mmdet's own tools as subprocesses
def test_code_running_url_refused_by_mmdets_own_tools(workspace, server,
                                                      torch_home):
    """mmdet's own test.py and train.py (load_from) on a shipped config load
    through the safe loader: the config's DTLRunner reads every checkpoint
    that way, with no process-wide change."""
    torch.save({'state_dict': {}, 'x': RunsCode()}, workspace / 'evil2.pth')
    server.files['/evil2.pth'] = file_bytes(workspace / 'evil2.pth')
    url = server.url('/evil2.pth')
    cfg = osp.join(ROOT, DEMO['voc'])
    tools = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
    env = dict(TORCH_HOME=str(torch_home))
    runs = ([osp.join(tools, 'test.py'),
             str(cfg), url], [
                 osp.join(tools, 'train.py'),
                 str(cfg), '--cfg-options', f'load_from={url}', *SHORT['voc']
             ])
    for i, args in enumerate(runs):
        out = run_failing(
            workspace,
            *args,
            '--work-dir',
            str(workspace / f'evil2_wd{i}'),
            env=env)
        assert url in out and 'refused' in out, out[-3000:]
        assert not (workspace / 'PWNED_BY_CHECKPOINT').exists()
