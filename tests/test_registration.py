"""Registration: each backbone is in mmengine's root MODELS and found from
mmdet's and mmseg's scopes; detection works where mmseg cannot import."""
import subprocess
import sys

import pytest

from dtl_mm.testing.tool_utils import DEMO, ROOT

# mmseg made unimportable, as in a detection-only environment
DETECTION_ONLY = f'''
import sys
sys.modules['mmseg'] = None
from dtl_mm.apis.runner_setup import build_model, load_config
cfg = load_config({DEMO['coco']!r})
model = build_model(cfg)
print(type(model.backbone).__name__, 'mmseg' in sys.modules and
      sys.modules['mmseg'] is not None)
'''


def test_backbones_registered_in_root_and_found_by_both_scopes():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.registry import MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS

    import dtl_mm.models as models
    for name in ('PretrainedSwinTransformer', 'DTLSwinTransformer',
                 'LoRASwinTransformer', 'AdapterSwinTransformer',
                 'AdaptFormerSwinTransformer', 'PretrainedVisionTransformer',
                 'DTLVisionTransformer'):
        cls = getattr(models, name)
        assert MODELS.module_dict.get(name) is cls
        # registered once, in the root only: the children find it there
        assert name not in MMDET_MODELS.module_dict
        assert name not in MMSEG_MODELS.module_dict
        assert MMDET_MODELS.get(name) is cls
        assert MMSEG_MODELS.get(name) is cls


@pytest.mark.slow  # runs the tools as subprocesses
def test_detection_needs_no_mmseg():
    proc = subprocess.run([sys.executable, '-c', DETECTION_ONLY],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ['DTLSwinTransformer', 'False']


# what `import dtl_mm` changes in mmengine, and what the configs' second
# import does
PROCESS = """
import sys
from mmengine.config import utils
from mmengine.fileio.backends import backends
from mmengine.runner.checkpoint import CheckpointLoader

def state():
    return (CheckpointLoader._schemes['http://'].__module__,
            backends['local'].__name__,
            'dtl_mm' in utils.MODULE2PACKAGE)

before = state()
import dtl_mm
import dtl_mm.apis.inferencer, dtl_mm.apis.runner_setup, dtl_mm.testing
after_import = state()
import dtl_mm.process_changes
print(before == after_import, after_import == state(), state())
"""


def test_import_registers_only_and_process_changes_are_a_named_import():
    out = subprocess.run([sys.executable, '-c', PROCESS],
                         capture_output=True,
                         text=True,
                         cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    unchanged, changed_by_second, now = out.stdout.split(' ', 2)
    # import dtl_mm and its apis: nothing changed
    assert unchanged == 'True'
    assert changed_by_second == 'False'
    assert now.split() == [
        "('dtl_mm.checkpoint.schemes',", "'AtomicLocalBackend',", 'True)'
    ]
