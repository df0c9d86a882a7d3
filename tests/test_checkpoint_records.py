"""Where a checkpoint's frozen Swin comes from, and what it was trained as:
the download cache tells URLs apart, a lean checkpoint whose pretrained
file moved says what it needs, the trunk record names the file actually
read, a checkpoint trained with another backbone layout is refused, a
--resume needs training state, and tools/convert_checkpoint.py checks its
output path up front."""
import fcntl
import os
import os.path as osp
import shutil
import threading
import types

import pytest
import torch
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from multitask_utils import config
from swin_utils import plain_swin
from test_checkpoints import file_bytes, run_failing
from tool_utils import DEMO, ROOT, SHORT, load_tool, tool

from dtl_mm.apis.inferencer import build_inferencer
from dtl_mm.apis.runner_setup import build_model
from dtl_mm.checkpoint.safe_load import (CheckpointError,
                                         cached_checkpoint_path,
                                         download_checkpoint,
                                         load_checkpoint_file)
from dtl_mm.checkpoint.trained_config import (TrainedConfigMismatch,
                                              check_trained_config)
from dtl_mm.engine.hooks import StrictLoadHook
from dtl_mm.models import CheckpointLayoutError, swin_fingerprint
from dtl_mm.models.weight_loading import decode_trunk_record

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


# ------------------------------------------------------------ the cache
def test_two_urls_with_one_file_name_are_two_cache_entries(
        tmp_path, server, torch_home):
    for sub, seed in (('a', 1), ('b', 2)):
        server.files[f'/{sub}/swin.pth'] = file_bytes(
            swin_file(tmp_path / f'{sub}.pth', seed))
    init_default_scope('mmdet')
    records = {}
    for sub in ('a', 'b'):
        url = server.url(f'/{sub}/swin.pth')
        backbone = MODELS.build(voc_config(url).model.backbone)
        backbone.init_weights()
        records[sub] = backbone.trunk_record
        expected = torch.load(tmp_path / f'{sub}.pth')['state_dict']
        assert torch.equal(
            backbone.swin.stages[0].blocks[0].attn.w_msa.qkv.weight,
            expected['stages.0.blocks.0.attn.w_msa.'
                     'qkv.weight'])
        assert records[sub]['source'] == url
    assert server.requests == ['/a/swin.pth', '/b/swin.pth']
    assert records['a']['sha256'] != records['b']['sha256']
    assert cached_checkpoint_path(server.url('/a/swin.pth')) != \
        cached_checkpoint_path(server.url('/b/swin.pth'))


def test_a_second_process_waits_for_the_download_and_reads_the_cache(
        tmp_path, torch_home):
    """Another rank holds the download lock: this one waits, then takes
    the file it cached, without a request of its own (the URL has no
    server)."""
    url = 'http://127.0.0.1:9/w/swin.pth'
    path = cached_checkpoint_path(url)
    os.makedirs(osp.dirname(path))
    result = []
    with open(osp.dirname(path) + '.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiter = threading.Thread(
            target=lambda: result.append(download_checkpoint(url)))
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and not result  # waiting for the lock
        shutil.copy(swin_file(tmp_path / 's.pth', 0), path)
        fcntl.flock(lock, fcntl.LOCK_UN)
    waiter.join(10)
    assert result == [path]


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
    inf = build_inferencer(
        voc_config(old), lean, backbone_from_pretrained=moved)
    assert inf.model.backbone.trunk_record == dict(source=moved, sha256=sha)
    # convert_checkpoint: the recorded file is gone, the config's is used
    convert = load_tool('convert_checkpoint.py')
    backbone, _ = convert.build_backbone_from(voc_config(moved))
    state = torch.load(lean)['state_dict']
    full = convert.to_full(state, backbone, None, lean, default=moved)
    assert swin_fingerprint({
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


# -------------------------------------------- the layout it was trained as
def test_checkpoint_of_another_side_network_layout_is_refused(tmp_path):
    lean, _ = lean_checkpoint(tmp_path, swin_file(tmp_path / 's.pth', 0))
    pretrained = str(tmp_path / 's.pth')
    for change, named in ((dict(first_g_block=8),
                           'model.backbone.first_g_block: trained with None, '
                           'configured 8'), (dict(beta=10.0),
                                             'model.backbone.beta: trained '
                                             'with 100.0, configured 10.0')):
        other = voc_config(pretrained, **change)
        with pytest.raises(TrainedConfigMismatch, match=named):
            build_inferencer(other, lean)  # tools/infer.py
        with pytest.raises(TrainedConfigMismatch, match=named):
            # tools/test.py and a --resume (StrictLoadHook), and
            # tools/convert_checkpoint.py
            check_trained_config(torch.load(lean), other, lean)
        # a new training from it (load_from): a warning, not an error
        assert check_trained_config(lean, other, strict=False)
    # the same config (drop path, pretrained path aside) passes
    same = voc_config('/elsewhere/swin.pth', drop_path_rate=0.0)
    assert check_trained_config(lean, same) == []


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


# ----------------------------------------------- convert_checkpoint.py
def test_convert_checks_its_output_path_up_front(tmp_path, monkeypatch):
    convert = load_tool('convert_checkpoint.py')
    with pytest.raises(SystemExit, match='is a folder'):
        convert.check_output_path(str(tmp_path))
    with pytest.raises(SystemExit, match='too long'):
        convert.check_output_path(str(tmp_path / ('x' * 250 + '.pth')))
    convert.check_output_path(str(tmp_path / 'ok.pth'))

    def fail_half_way(obj, f):
        with open(f, 'wb') as out:
            out.write(b'PK' + b'\0' * 1000)
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(convert.torch, 'save', fail_half_way)
    with pytest.raises(OSError):
        convert.save_with_hash({'w': torch.ones(1)}, str(tmp_path / 'o.pth'))
    assert os.listdir(tmp_path) == []
