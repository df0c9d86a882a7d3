"""tools/convert_checkpoint.py."""
import os

import pytest
import torch

from dtl_mm.checkpoint import atomic_io, convert


# ----------------------------------------------- convert_checkpoint.py
def test_convert_checks_its_output_path_up_front(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match='is a folder'):
        convert.check_output_path(str(tmp_path))
    with pytest.raises(ValueError, match='too long'):
        convert.check_output_path(str(tmp_path / ('x' * 250 + '.pth')))
    convert.check_output_path(str(tmp_path / 'ok.pth'))

    def disk_full(fd):  # the device fills up as the file is flushed
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(atomic_io.os, 'fsync', disk_full)
    with pytest.raises(OSError):
        convert.save_with_hash({'w': torch.ones(1)}, str(tmp_path / 'o.pth'))
    assert os.listdir(tmp_path) == []
