"""A checkpoint records the side-network layout it was trained with."""
import pytest
import torch

from dtl_mm.apis.dtl_inferencer import DTLInferencer
from dtl_mm.checkpoint.trained_config import (TrainedConfigMismatch,
                                              check_trained_config)
from helpers.checkpoint_utils import lean_checkpoint, swin_file, voc_config


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
            DTLInferencer(other, lean)  # tools/infer.py
        with pytest.raises(TrainedConfigMismatch, match=named):
            # tools/test.py and a --resume (DTLRunner), and
            # tools/convert_checkpoint.py
            check_trained_config(torch.load(lean), other, lean)
        # a new training from it (load_from): a warning, not an error
        assert check_trained_config(lean, other, strict=False)
    # the same config (drop path, pretrained path aside) passes
    same = voc_config('/elsewhere/swin.pth', drop_path_rate=0.0)
    assert check_trained_config(lean, same) == []
