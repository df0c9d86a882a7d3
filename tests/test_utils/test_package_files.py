"""Finding a config by its path or by a shipped config's name."""
import argparse
import os.path as osp

import pytest

from dtl_mm.utils.package_files import config_arg, find_config, shipped


def test_shipped_names_paths_and_placeholders():
    name = 'retinanet_swin-t_dtlv2-ls_toy-voc.py'
    found = osp.join(shipped('configs'), 'demo', name)
    assert find_config(name) == found
    assert find_config(f'demo/{name}') == found
    assert find_config(f'dtl_mm::demo/{name}') == found
    assert config_arg(name) == name  # checked, handed on unchanged
    assert find_config('my_config.py') is None
    with pytest.raises(
            argparse.ArgumentTypeError,
            match='my_config.py: no such config file'):
        config_arg('my_config.py')


def test_a_name_several_shipped_files_have_is_ambiguous():
    # every config folder has one
    with pytest.raises(
            ValueError,
            match=r'metafile.yml: ambiguous, .*\(ade20k/metafile'
            r'.yml, coco/metafile.yml'):
        find_config('metafile.yml')
    with pytest.raises(argparse.ArgumentTypeError, match='ambiguous'):
        config_arg('metafile.yml')
