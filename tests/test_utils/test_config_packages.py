"""``mmseg::`` base configs resolve on a fork of the OpenMMLab stack."""
import glob
import os.path as osp

from mmengine.config import Config
from mmengine.config import utils as config_utils

from dtl_mm.utils.config_packages import resolve_forked_config_packages
from helpers.tool_utils import ROOT

ADE20K = sorted(glob.glob(osp.join(ROOT, 'configs', 'ade20k', '*.py')))[0]


def test_resolvable_entries_are_left_alone(monkeypatch):
    table = dict(config_utils.MODULE2PACKAGE)
    monkeypatch.setattr(config_utils, 'MODULE2PACKAGE', table)
    before = dict(table)
    assert resolve_forked_config_packages() == {}
    assert table == before


def test_module_from_another_distribution_resolves(monkeypatch):
    """The fork's situation: ``mmseg`` is importable, but no distribution
    carries mmengine's name for it.  The distribution that really provides
    ``mmseg`` here stands in for ``onedl-mmsegmentation``."""
    table = dict(config_utils.MODULE2PACKAGE, mmseg='mmsegmentation-absent')
    monkeypatch.setattr(config_utils, 'MODULE2PACKAGE', table)
    try:
        Config.fromfile(ADE20K)
    except ModuleNotFoundError as e:
        assert 'mmsegmentation-absent is not installed' in str(e)
    else:
        raise AssertionError('the missing distribution was not noticed')

    changed = resolve_forked_config_packages()
    assert set(changed) == {'mmseg'}
    assert changed['mmseg'][0] == 'mmsegmentation-absent'
    assert table['mmseg'] == changed['mmseg'][1]
    cfg = Config.fromfile(ADE20K)
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.decode_head.type == 'UPerHead'


def test_unprovided_module_keeps_mmengine_error(monkeypatch):
    table = dict(config_utils.MODULE2PACKAGE, mmnotthere='mmnotthere-dist')
    monkeypatch.setattr(config_utils, 'MODULE2PACKAGE', table)
    assert resolve_forked_config_packages() == {}
    assert table['mmnotthere'] == 'mmnotthere-dist'
