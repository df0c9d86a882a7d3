"""Registration: each backbone is in mmengine's root MODELS and found from
mmdet's and mmseg's scopes; detection works where mmseg cannot import."""
import os
import subprocess
import sys

import pytest

from helpers.tool_utils import DEMO, ROOT

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


# what `import dtl_mm` changes in mmengine: the config-package table only
PROCESS = """
import sys
from mmengine.config import utils
from mmengine.fileio.backends import backends
from mmengine.runner.checkpoint import CheckpointLoader


def loading():
    return (sorted((p, f.__module__)
                   for p, f in CheckpointLoader._schemes.items()),
            backends['local'].__name__)

before = loading(), 'dtl_mm' in utils.MODULE2PACKAGE
import dtl_mm
import dtl_mm.apis.inferencer, dtl_mm.apis.runner_setup
import dtl_mm.engine.runner, dtl_mm.process_changes
import dtl_mm.testing.toy_data
after_import = loading(), 'dtl_mm' in utils.MODULE2PACKAGE
print(before[0] == after_import[0], before[1], after_import[1],
      backends['atomic_local'].__name__)
"""


@pytest.mark.slow  # multi-second: out of the fast loop
def test_import_adds_the_config_scope_and_changes_no_loading():
    out = subprocess.run([sys.executable, '-c', PROCESS],
                         capture_output=True,
                         text=True,
                         cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loading_unchanged, scope_before, scope_after, named = out.stdout.split()
    # import dtl_mm and all of its modules: mmengine's checkpoint loaders
    # and its local file backend unchanged, the dtl_mm:: config scope added
    # and the atomic backend registered under a name of its own
    assert loading_unchanged == 'True'
    assert (scope_before, scope_after) == ('False', 'True')
    assert named == 'AtomicLocalBackend'


USER_CONFIG_INHERITS = """
import dtl_mm
from mmengine.config import Config
cfg = Config.fromfile(sys.argv[1])
print(cfg.model.backbone.type, cfg.custom_value)
"""


@pytest.mark.slow  # multi-second: out of the fast loop
def test_user_config_inherits_dtl_mm_after_import_dtl_mm(tmp_path):
    """`_base_ = 'dtl_mm::...'` resolves in a program of the user's own
    that imports dtl_mm (and nothing else of ours)."""
    user = tmp_path / 'my_voc.py'
    user.write_text("_base_ = 'dtl_mm::demo/retinanet_swin-t_dtlv2-ls_"
                    "toy-voc.py'\ncustom_value = 7\n")
    out = subprocess.run(
        [sys.executable, '-c', 'import sys' + USER_CONFIG_INHERITS,
         str(user)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=ROOT),
        timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['DTLSwinTransformer', '7']
