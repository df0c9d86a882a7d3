"""Lean checkpoints (trainable weights plus a record of the pretrained
trunk): what they hold, how they load, evaluate and resume, and what
happens when the pretrained file moves."""
import os
import os.path as osp
import pickle
import re
import shutil

import mmdet
import mmseg
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint
from PIL import Image

from dtl_mm.apis.dtl_inferencer import DTLInferencer
from dtl_mm.apis.runner_setup import build_model
from dtl_mm.checkpoint import convert
from dtl_mm.checkpoint.lean_checkpoint import decode_trunk_record
from dtl_mm.checkpoint.safe_load import (CheckpointError, _restricted_pickle,
                                         load_checkpoint_file)
from dtl_mm.models import (CheckpointLayoutError, DTLSwinTransformer,
                           trunk_fingerprint)
from helpers.checkpoint_utils import (DEMO_SWIN, RunsCode, lean_checkpoint,
                                      run_failing, swin_file, voc_config)
from helpers.tool_utils import (DEMO, FINAL, METRIC_KEYS, ROOT, SHORT,
                                metrics_in, pretrained_config, run_tool, tool)


# ------------------------------------------- lean checkpoints' trunk file
def test_lean_checkpoint_whose_pretrained_file_moved(tmp_path):
    old = swin_file(tmp_path / 'swin.pth', 0)
    lean, trained = lean_checkpoint(tmp_path, old)
    sha = trained.backbone.trunk_record['sha256']
    moved = str(tmp_path / 'moved' / 'swin.pth')
    os.makedirs(osp.dirname(moved))
    shutil.move(old, moved)
    model = build_model(voc_config(old))
    with pytest.raises(CheckpointLayoutError) as e:
        load_checkpoint(model, lean)
    msg = str(e.value)
    assert f'{old} does not exist' in msg and sha in msg
    assert '--backbone-from-pretrained FILE (tools/test.py, tools/infer.py)'\
        in msg and 'convert_checkpoint.py' in msg
    # tools/infer.py's option points at the new place
    inf = DTLInferencer(voc_config(old), lean, backbone_from_pretrained=moved)
    assert inf.model.backbone.trunk_record == dict(source=moved, sha256=sha)
    # convert_checkpoint: the recorded file is gone, the config's is used
    backbone, _ = convert.build_backbone_from(voc_config(moved))
    state = torch.load(lean)['state_dict']
    full = convert.to_full(state, backbone, None, lean, default=moved)
    assert trunk_fingerprint({
        k[len('backbone.swin.'):]: v
        for k, v in full.items() if k.startswith('backbone.swin.')
        and k[len('backbone.swin.'):] in backbone.trunk_keys
    }) == sha
    with pytest.raises(CheckpointError, match=f'{sha}.*--pretrained FILE'):
        convert.to_full(state, backbone, None, lean, default=None)


def test_after_a_move_new_checkpoints_record_the_new_path(tmp_path):
    """Resumed with the pretrained file at a new path: the trunk record (and
    so every checkpoint saved next) names the file read, not the old one."""
    old = swin_file(tmp_path / 'swin.pth', 0)
    lean, trained = lean_checkpoint(tmp_path, old)
    new = str(tmp_path / 'swin_new.pth')
    shutil.move(old, new)
    model = build_model(voc_config(new))
    model.backbone.init_weights()  # what a resumed run does first
    load_checkpoint(model, lean)
    record = decode_trunk_record(model.state_dict()['backbone._extra_state'])
    assert record == dict(
        source=new, sha256=trained.backbone.trunk_record['sha256'])


# ---------------------------------------------------- safe, every torch
@pytest.mark.slow
def test_restricted_unpickler_for_old_torch(lean_run, monkeypatch):
    """torch < 2.4 has no add_safe_globals: our own allow-list applies."""
    monkeypatch.delattr(torch.serialization, 'add_safe_globals')
    ckpt = load_checkpoint_file(str(lean_run['lean']))
    assert 'message_hub' in ckpt and 'optimizer' in ckpt
    torch.save({'x': RunsCode()}, lean_run['ws'] / 'evil_old.pth')
    with pytest.raises(CheckpointError, match='refused.*posix.system'):
        load_checkpoint_file(str(lean_run['ws'] / 'evil_old.pth'))
    assert issubclass(_restricted_pickle.Unpickler, pickle.Unpickler)


@pytest.mark.slow
def test_lean_checkpoint_holds_what_training_changed(lean_run):
    lean = load_checkpoint_file(str(lean_run['lean']))
    full = load_checkpoint_file(str(lean_run['full']))
    lean_keys, full_keys = set(lean['state_dict']), set(full['state_dict'])
    swin = {k for k in full_keys if k.startswith('backbone.swin.')}
    assert swin and not swin & lean_keys
    assert lean_keys == full_keys - swin
    assert any(k.startswith('backbone.csn.') for k in lean_keys)
    assert 'optimizer' in lean and 'param_schedulers' in lean
    record = decode_trunk_record(lean['state_dict']['backbone._extra_state'])
    assert record['source'] == str(lean_run['pretrained'])
    backbone = DTLSwinTransformer(
        **DEMO_SWIN,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(lean_run['pretrained'])))
    backbone.init_weights()
    assert record['sha256'] == trunk_fingerprint(backbone.trunk_state())
    assert osp.getsize(lean_run['lean']) < 0.5 * osp.getsize(lean_run['full'])


@pytest.mark.slow
def test_lean_and_full_checkpoints_evaluate_the_same(lean_run):
    ws, cfg = lean_run['ws'], lean_run['cfg']
    own = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')
    results, preds = [], []
    for i, (script, ckpt) in enumerate(
        ((tool('test.py'), lean_run['lean']),
         (tool('test.py'), lean_run['full']), (own, lean_run['lean']))):
        pkl = ws / f'eval_{i}.pkl'
        # every box kept (a barely trained model scores low)
        out = run_tool(ws, script, cfg, str(ckpt), '--work-dir',
                       str(ws / 'eval'), '--out', str(pkl), '--cfg-options',
                       'model.test_cfg.score_thr=0.0')
        results.append(metrics_in(out, METRIC_KEYS['voc']))
        with open(pkl, 'rb') as f:
            preds.append(pickle.load(f))
    assert results[0] == results[1] == results[2]
    # so short a training scores 0 mAP with any Swin weights, so equal mAPs
    # prove little: the predictions themselves, every box, score and label,
    # must agree
    assert len(preds[0]) == 4
    for other in preds[1:]:
        assert len(other) == 4
        for a, b in zip(preds[0], other):
            assert a['img_path'] == b['img_path']
            assert len(a['pred_instances']['scores']) > 0
            for key in ('bboxes', 'scores', 'labels'):
                assert torch.equal(a['pred_instances'][key],
                                   b['pred_instances'][key]), key


@pytest.mark.slow
def test_det_inferencer_with_lean_checkpoint(lean_run, monkeypatch):
    """mmdet's own DetInferencer completes a lean checkpoint too."""
    from mmdet.apis import DetInferencer
    monkeypatch.chdir(lean_run['ws'])
    image = sorted((lean_run['ws'] / 'data/toy/voc/VOCdevkit/VOC2007/'
                    'JPEGImages').glob('*.jpg'))[0]
    cfg = Config.fromfile(lean_run['cfg'])
    cfg.model.test_cfg.score_thr = 0.0  # a barely trained model: keep all
    preds = [
        DetInferencer(cfg, str(lean_run[kind]),
                      device='cpu')(str(image))['predictions'][0]
        for kind in ('lean', 'full')
    ]
    assert preds[0]['bboxes'] and preds[0] == preds[1]


@pytest.mark.slow
def test_lean_segmentor_checkpoint_in_mmseg_own_tool(lean_run):
    ws = lean_run['ws']
    cfg = pretrained_config(ws, 'ade20k', lean_run['pretrained'], 'ade_pre')
    wd = ws / 'wd_ade_lean'
    run_tool(ws, tool('train.py'), cfg, '--work-dir', str(wd), '--cfg-options',
             *SHORT['ade20k'])
    lean = wd / FINAL['ade20k']
    state = load_checkpoint_file(str(lean))['state_dict']
    assert not any(k.startswith('backbone.swin.') for k in state)
    run_tool(ws, tool('convert_checkpoint.py'), cfg, str(lean),
             str(ws / 'ade_full.pth'), '--to', 'full')
    full = next(ws.glob('ade_full-*.pth'))
    own = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    results, maps = [], []
    runs = ((tool('test.py'), lean), (own, lean), (tool('test.py'), full))
    for i, (script, ckpt) in enumerate(runs):
        out_dir = ws / f'eval_ade_maps_{i}'
        results.append(
            metrics_in(
                run_tool(ws, script, cfg, str(ckpt), '--work-dir',
                         str(ws / 'eval_ade'), '--out', str(out_dir)),
                METRIC_KEYS['ade20k']))
        maps.append({
            p.name: np.asarray(Image.open(p))
            for p in sorted(out_dir.glob('*.png'))
        })
    assert results[0] == results[1] == results[2]
    # so short a training scores 0 mIoU with any Swin weights, so equal
    # mIoUs prove little: the label maps themselves must agree, pixel for
    # pixel
    assert len(maps[0]) == 4
    # (and they tell weights apart: not one class everywhere)
    assert len(np.unique(np.stack(list(maps[0].values())))) > 1
    for other in maps[1:]:
        assert other.keys() == maps[0].keys()
        for name, label in maps[0].items():
            assert np.array_equal(other[name], label), name


@pytest.mark.slow
def test_lean_checkpoint_refuses_another_pretrained_file(lean_run):
    ws = lean_run['ws']
    state = torch.load(lean_run['pretrained'], weights_only=True)
    key = next(k for k in state['model'] if k.endswith('qkv.weight'))
    state['model'][key] = state['model'][key] + 1e-3
    torch.save(state, ws / 'swin_changed.pth')
    changed = pretrained_config(ws, 'voc', ws / 'swin_changed.pth',
                                'voc_changed')
    out = run_failing(ws, tool('test.py'), changed, str(lean_run['lean']))
    assert 'different weights' in out and 'swin_changed.pth' in out
    assert not re.search(r'pascal_voc/mAP: [\d.]', out)
    # and with no pretrained file at all (the demo config: init_cfg=None)
    out = run_failing(ws, tool('test.py'), osp.join(ROOT, DEMO['voc']),
                      str(lean_run['lean']))
    assert 'lean checkpoint' in out and 'no pretrained file' in out


@pytest.mark.slow
def test_resume_from_lean_equals_resume_from_full(lean_run):
    ws, cfg = lean_run['ws'], lean_run['cfg']
    finals = []
    for name in ('lean', 'full'):
        wd = ws / f'resume_{name}'
        wd.mkdir()
        shutil.copy(lean_run[name], wd / 'epoch_1.pth')
        out = run_tool(
            ws,
            tool('train.py'),
            cfg,
            '--work-dir',
            str(wd),
            '--resume',
            str(wd / 'epoch_1.pth'),
            '--cfg-options',
            *SHORT['voc'],
            'train_cfg.max_epochs=2',
            # the data order of a fresh sampler
            'randomness.seed=1')
        assert 'resumed epoch: 1, iter: 2' in out
        finals.append(load_checkpoint_file(str(wd / 'epoch_2.pth')))
    (a, b) = finals
    assert a['meta']['iter'] == b['meta']['iter'] == 4
    # both went on with the optimizer state of the checkpoint (AdamW's step
    # count from 2), not with a new one, which would also agree
    for ckpt in (a, b):
        assert {int(s['step'])
                for s in ckpt['optimizer']['state'].values()} == {4}
    assert set(a['state_dict']) == set(b['state_dict'])
    for k, v in a['state_dict'].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b['state_dict'][k]), k
    for pid, s in a['optimizer']['state'].items():
        assert torch.equal(s['exp_avg'],
                           b['optimizer']['state'][pid]['exp_avg'])


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['lean', 'full', 'ddp', 'mmdet'])
def test_our_and_other_model_checkpoints_as_pretrained(lean_run, kind,
                                                       tmp_path):
    reference = DTLSwinTransformer(
        **DEMO_SWIN,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(lean_run['pretrained'])))
    reference.init_weights()
    full = load_checkpoint_file(str(lean_run['full']))['state_dict']
    if kind in ('lean', 'full'):
        source = str(lean_run[kind])
    else:
        if kind == 'ddp':  # a whole model saved from its DDP wrapper
            state = {'module.' + k: v for k, v in full.items()}
        else:  # an mmdet Swin detector: backbone.stages.* beside the rest
            state = {
                k.replace('backbone.swin.', 'backbone.'): v
                for k, v in full.items() if not k.startswith('backbone.csn.')
            }
        source = str(tmp_path / f'{kind}.pth')
        torch.save({'state_dict': state}, source)
    backbone = DTLSwinTransformer(
        **DEMO_SWIN, init_cfg=dict(type='Pretrained', checkpoint=source))
    backbone.init_weights()
    want = reference.trunk_state()
    for k, v in backbone.trunk_state().items():
        assert torch.equal(v, want[k]), k
