"""Checkpoints from every source: http(s) URLs served on 127.0.0.1, our own
whole-model checkpoints (full, lean, DDP-saved) as pretrained weights,
refusal of checkpoints that do not fit the model, and lean checkpoints
through our and mmdet's / mmseg's own tools."""
import os
import os.path as osp
import pickle
import re
import shutil
import subprocess
import sys
import zipfile

import mmdet
import mmseg
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner.checkpoint import (CheckpointLoader, get_state_dict,
                                        save_checkpoint)
from PIL import Image
from swin_utils import plain_swin, skip_random_init, to_microsoft_layout
from tool_utils import (DEMO, FINAL, METRIC_KEYS, ROOT, SHORT, metrics_in,
                        run_tool, tool)

from dtl_mm.checkpoint.safe_load import (CheckpointError, _restricted_pickle,
                                         cached_checkpoint_path,
                                         load_checkpoint_file)
from dtl_mm.checkpoint.schemes import unsafe_schemes
from dtl_mm.models import (CheckpointLayoutError, DTLSwinTransformer,
                           swin_fingerprint)
from dtl_mm.models.swin_presets import TINY_SWIN
from dtl_mm.models.weight_loading import decode_trunk_record

# the VOC demo config's small Swin
DEMO_SWIN = dict(TINY_SWIN, out_indices=(1, 2, 3))


def file_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


# --------------------------------------------------- URLs, as shipped
def test_every_mmengine_scheme_goes_through_the_safe_loader():
    assert unsafe_schemes() == []


@pytest.mark.parametrize('config', [
    'configs/coco/cascade-mask-rcnn_swin-b_dtlv2-ls_fpn_3x_coco.py',
])
def test_shipped_config_url_downloads_once_and_fills_every_weight(
        config, tmp_path, server, torch_home):
    """The config as shipped (the official release URL) with only the host
    rewritten to a local server that holds a file of the real layout."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    url = cfg.model.backbone.init_cfg.checkpoint
    assert url.startswith('https://github.com/')
    path = url[len('https://github.com'):]
    swin_args = {
        k: cfg.model.backbone[k]
        for k in ('embed_dims', 'depths', 'num_heads', 'window_size')
    }
    source = plain_swin(**swin_args, drop_path_rate=0.0)
    torch.save(
        to_microsoft_layout(source.state_dict()), tmp_path / 'release.pth')
    server.files[path] = file_bytes(tmp_path / 'release.pth')
    cfg.model.backbone.init_cfg.checkpoint = server.url(path)

    init_default_scope('mmdet')
    for _ in range(2):
        with skip_random_init():  # the file's values replace them
            backbone = MODELS.build(cfg.model.backbone)
        backbone.init_weights()
        got = backbone.trunk_state()
        for k, v in source.state_dict().items():
            if not k.startswith('norm'):  # output norms: not in the file
                assert torch.equal(got[k], v), k
    assert server.requests == [path]  # the second build used the cache
    assert osp.isfile(cached_checkpoint_path(server.url(path)))


class _RunsCode:

    def __reduce__(self):
        return (os.system, ('touch PWNED_BY_CHECKPOINT', ))


def test_truncated_download_is_an_error_and_not_cached(tmp_path, server,
                                                       torch_home):
    torch.save({'state_dict': {'w': torch.ones(50000)}}, tmp_path / 'a.pth')
    server.files['/w/a.pth'] = file_bytes(tmp_path / 'a.pth')
    server.truncate.add('/w/a.pth')
    url = server.url('/w/a.pth')
    with pytest.raises(
            CheckpointError,
            match=r'/w/a\.pth.*(incomplete|'
            r'interrupted).*nothing was cached at .*a\.pth'):
        load_checkpoint_file(url)
    assert not osp.exists(cached_checkpoint_path(url))
    assert os.listdir(osp.dirname(cached_checkpoint_path(url))) == []
    # a short file whose length matches: the zip archive check catches it
    server.truncate.clear()
    server.files['/w/a.pth'] = file_bytes(tmp_path / 'a.pth')[:-100]
    with pytest.raises(
            CheckpointError, match='not valid.*nothing was '
            'cached'):
        load_checkpoint_file(url)
    # the complete file then downloads and loads
    server.files['/w/a.pth'] = file_bytes(tmp_path / 'a.pth')
    assert load_checkpoint_file(url)['state_dict']['w'].sum() == 50000
    assert len(server.requests) == 3


def test_code_running_checkpoint_from_url_is_refused(tmp_path, server,
                                                     torch_home, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({'state_dict': {}, 'x': _RunsCode()}, tmp_path / 'evil.pth')
    server.files['/evil.pth'] = file_bytes(tmp_path / 'evil.pth')
    url = server.url('/evil.pth')
    # init_cfg
    backbone = DTLSwinTransformer(
        **DEMO_SWIN, init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(CheckpointError, match=f'{url}.*refused.*posix.system'):
        backbone.init_weights()
    # every other mmengine path (load_from, resume, test) goes through here
    with pytest.raises(CheckpointError, match='refused'):
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert not (tmp_path / 'PWNED_BY_CHECKPOINT').exists()


@pytest.mark.slow
def test_tools_refuse_code_running_checkpoint_url(workspace, server,
                                                  torch_home):
    torch.save({'state_dict': {}, 'x': _RunsCode()}, workspace / 'evil.pth')
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


# ---------------------------------------------------- safe, every torch
@pytest.mark.slow
def test_restricted_unpickler_for_old_torch(lean_run, monkeypatch):
    """torch < 2.4 has no add_safe_globals: our own allow-list applies."""
    monkeypatch.delattr(torch.serialization, 'add_safe_globals')
    ckpt = load_checkpoint_file(str(lean_run['lean']))
    assert 'message_hub' in ckpt and 'optimizer' in ckpt
    torch.save({'x': _RunsCode()}, lean_run['ws'] / 'evil_old.pth')
    with pytest.raises(CheckpointError, match='refused.*posix.system'):
        load_checkpoint_file(str(lean_run['ws'] / 'evil_old.pth'))
    assert issubclass(_restricted_pickle.Unpickler, pickle.Unpickler)


def rename_globals(src, dst, old, new):
    """Rewrites a torch zip checkpoint's pickle (protocol 2: globals are
    'module\\nname\\n' text) as if saved where ``old`` was called ``new``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith('data.pkl'):
                assert old in data
                data = data.replace(old, new)
            zout.writestr(item, data)


def test_numpy_arrays_load_under_both_numpy_module_names(tmp_path):
    """A checkpoint pickled under numpy 1 names numpy.core.multiarray, one
    under numpy 2 numpy._core.multiarray; both load on either."""
    path = tmp_path / 'np.pth'
    torch.save({'meta': {'a': np.arange(3), 's': np.float64(2.5)}}, path)
    this, other = b'numpy._core.multiarray\n', b'numpy.core.multiarray\n'
    if not hasattr(np, '_core'):  # numpy 1
        this, other = other, this
    rename_globals(path, tmp_path / 'renamed.pth', this, other)
    for name in ('np.pth', 'renamed.pth'):
        meta = load_checkpoint_file(str(tmp_path / name))['meta']
        assert meta['a'].tolist() == [0, 1, 2] and meta['s'] == 2.5


def test_random_bytes_and_plain_tensor_are_named_as_such(tmp_path):
    (tmp_path / 'noise.pth').write_bytes(os.urandom(4096))
    with pytest.raises(
            CheckpointError, match='noise.pth: not a checkpoint '
            'file'):
        load_checkpoint_file(str(tmp_path / 'noise.pth'))
    torch.save(torch.ones(3), tmp_path / 'tensor.pth')
    with pytest.raises(
            CheckpointError,
            match='tensor.pth: not a checkpoint:'
            ' it holds a Tensor'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'tensor.pth'))


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


@pytest.fixture(scope='module')
def workspace(toy_workspace):
    """The session's folder of toy data (conftest.toy_workspace)."""
    return toy_workspace


def pretrained_config(ws, task, pretrained, name):
    """What a user writes: the demo config with a pretrained Swin file."""
    path = ws / f'{name}.py'
    path.write_text(f'_base_ = {osp.join(ROOT, DEMO[task])!r}\n'
                    f'model = dict(backbone=dict(init_cfg=dict(_delete_=True, '
                    f'type="Pretrained", '
                    f'checkpoint={str(pretrained)!r})))\n')
    return str(path)


@pytest.fixture(scope='module')
def lean_run(workspace):
    """A short VOC training run from a pretrained Swin file: its lean
    checkpoint, and the self-contained one tools/convert_checkpoint.py
    makes of it."""
    ws = workspace
    swin = plain_swin(**DEMO_SWIN)
    torch.save(to_microsoft_layout(swin.state_dict()), ws / 'swin_demo.pth')
    cfg = pretrained_config(ws, 'voc', ws / 'swin_demo.pth', 'voc_pre')
    wd = ws / 'wd_lean'
    run_tool(ws, tool('train.py'), cfg, '--work-dir', str(wd), '--cfg-options',
             *SHORT['voc'], 'randomness.seed=1')
    out = run_tool(ws, tool('convert_checkpoint.py'), cfg,
                   str(wd / 'epoch_1.pth'), str(ws / 'voc_full.pth'), '--to',
                   'full')
    full = next(ws.glob('voc_full-*.pth'))
    assert str(full) in out
    return dict(
        ws=ws,
        cfg=cfg,
        wd=wd,
        lean=wd / 'epoch_1.pth',
        full=full,
        pretrained=ws / 'swin_demo.pth')


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
    assert record['sha256'] == swin_fingerprint(backbone.trunk_state())
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


def test_partial_swin_in_checkpoint_is_refused():
    backbone = DTLSwinTransformer(**DEMO_SWIN)
    state = {'backbone.' + k: v for k, v in backbone.state_dict().items()}
    del state['backbone.swin.stages.2.blocks.1.attn.w_msa.qkv.weight']
    holder = torch.nn.Module()
    holder.backbone = DTLSwinTransformer(**DEMO_SWIN)
    with pytest.raises(CheckpointLayoutError, match='only part of the Swin'):
        holder.load_state_dict(state)
