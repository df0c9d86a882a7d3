"""Loading checkpoint files and URLs safely: the restricted unpickler,
downloads whole or not at all, one cache entry per URL."""
import fcntl
import os
import os.path as osp
import shutil
import threading
import zipfile

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner.checkpoint import CheckpointLoader

from dtl_mm.checkpoint.safe_load import (CheckpointError,
                                         cached_checkpoint_path,
                                         download_checkpoint,
                                         load_checkpoint_file)
from dtl_mm.checkpoint.schemes import safe_checkpoint_schemes
from dtl_mm.models import DTLSwinTransformer
from helpers.checkpoint_utils import (DEMO_SWIN, RunsCode, file_bytes,
                                      swin_file, voc_config)
from helpers.swin_utils import (plain_swin, skip_random_init,
                                to_microsoft_layout)
from helpers.tool_utils import ROOT


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


@pytest.mark.slow  # multi-second: out of the fast loop
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
    torch.save({'state_dict': {}, 'x': RunsCode()}, tmp_path / 'evil.pth')
    server.files['/evil.pth'] = file_bytes(tmp_path / 'evil.pth')
    url = server.url('/evil.pth')
    # init_cfg
    backbone = DTLSwinTransformer(
        **DEMO_SWIN, init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(CheckpointError, match=f'{url}.*refused.*posix.system'):
        backbone.init_weights()
    # every other mmengine path (load_from, resume, test) goes through here
    # in DTLRunner
    with pytest.raises(CheckpointError, match='refused'), \
            safe_checkpoint_schemes():
        CheckpointLoader.load_checkpoint(url, map_location='cpu')
    assert not (tmp_path / 'PWNED_BY_CHECKPOINT').exists()


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
            ' it holds a Tensor'), safe_checkpoint_schemes():
        CheckpointLoader.load_checkpoint(str(tmp_path / 'tensor.pth'))
