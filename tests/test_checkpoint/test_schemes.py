"""Inside safe_checkpoint_schemes every file scheme mmengine loads
checkpoints from goes through the safe loader; outside, mmengine's own."""
from mmengine.runner.checkpoint import CheckpointLoader

from dtl_mm.checkpoint.schemes import safe_checkpoint_schemes, unsafe_schemes


def test_every_mmengine_scheme_is_safe_inside_and_restored_after():
    before = dict(CheckpointLoader._schemes)
    assert unsafe_schemes()  # mmengine's own: importing dtl_mm changed none
    with safe_checkpoint_schemes():
        assert unsafe_schemes() == []
        with safe_checkpoint_schemes():  # contexts nest
            assert unsafe_schemes() == []
        assert unsafe_schemes() == []
    assert dict(CheckpointLoader._schemes) == before
