"""Downloads through torch's download_url_to_file: the hash in a file's
name (torch hub's rule) is checked before the file is cached, and a short
name part that happens to be hex is no hash."""
import hashlib
import os
import os.path as osp

import pytest
import torch

from dtl_mm.checkpoint.safe_load import (CheckpointError,
                                         cached_checkpoint_path,
                                         load_checkpoint_file)
from helpers.checkpoint_utils import file_bytes


def test_hash_in_the_name_is_checked_before_caching(tmp_path, server,
                                                    torch_home):
    torch.save({'w': torch.ones(3)}, tmp_path / 'a.pth')
    data = file_bytes(tmp_path / 'a.pth')
    sha = hashlib.sha256(data).hexdigest()
    wrong = '0' * 8 if not sha.startswith('0' * 8) else '1' * 8
    server.files[f'/swin-{wrong}.pth'] = data
    url = server.url(f'/swin-{wrong}.pth')
    with pytest.raises(
            CheckpointError,
            match=f'swin-{wrong}.pth.*not valid.*{wrong}.*nothing was cached'):
        load_checkpoint_file(url)
    assert os.listdir(osp.dirname(cached_checkpoint_path(url))) == []
    # the right hash, and a one-letter hex name part that is no hash
    for name in (f'/swin-{sha[:8]}.pth', '/swin-b.pth'):
        server.files[name] = data
        assert load_checkpoint_file(server.url(name))['w'].sum() == 3
        assert osp.isfile(cached_checkpoint_path(server.url(name)))


def test_missing_file_names_the_url(server, torch_home):
    url = server.url('/nowhere/swin.pth')
    with pytest.raises(CheckpointError, match=f'{url}: download failed.*404'):
        load_checkpoint_file(url)
    assert not osp.exists(cached_checkpoint_path(url))
