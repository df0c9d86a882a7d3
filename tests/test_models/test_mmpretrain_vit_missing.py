"""Without an importable mmpretrain (the pinned stack: its torchvision does
not load beside the CPU torch), dtl_mm still imports and registers the
mmpretrain-ViT backbones; building one says which stack runs it."""
import sys

import pytest
from mmengine.registry import MODELS

import dtl_mm  # noqa: F401
from dtl_mm.models import DTLMMPretrainViT


def test_import_needs_no_mmpretrain_and_building_names_the_stack(monkeypatch):
    for name in ('PretrainedMMPretrainViT', 'DTLMMPretrainViT',
                 'LoRAMMPretrainViT'):
        assert MODELS.get(name) is not None, name
    # as an environment where `import mmpretrain` fails
    monkeypatch.setitem(sys.modules, 'mmpretrain', None)
    monkeypatch.setitem(sys.modules, 'mmpretrain.models', None)
    with pytest.raises(
            ImportError, match=r'does not import here.*tools/install.sh'):
        DTLMMPretrainViT(arch='deit-small')
