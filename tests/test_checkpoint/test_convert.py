"""Lean <-> full conversion through the backbone's own state-dict logic:
a round trip gives back the lean checkpoint bit for bit, the full one holds
the pretrained file's trunk, and a file of other weights is refused by
name."""
import pytest
import torch

from dtl_mm.checkpoint import convert
from dtl_mm.checkpoint.safe_load import CheckpointError
from helpers.checkpoint_utils import lean_checkpoint, swin_file, voc_config


def lean_run_and_backbone(tmp_path):
    """(the pretrained file, a lean checkpoint trained from it, its path,
    the config's backbone to convert with)."""
    pretrained = swin_file(tmp_path / 'swin.pth', 0)
    lean_path, _ = lean_checkpoint(tmp_path, pretrained)
    backbone, _ = convert.build_backbone_from(voc_config(pretrained))
    return pretrained, torch.load(lean_path), lean_path, backbone


def test_lean_full_lean_round_trip(tmp_path):
    pretrained, lean, lean_path, backbone = lean_run_and_backbone(tmp_path)
    full = convert.convert_checkpoint(
        lean, backbone, 'full', lean_path, strip_optimizer=True)
    assert set(full) == {'meta', 'state_dict'}
    swin = torch.load(pretrained)['state_dict']
    for k, v in swin.items():
        assert torch.equal(full['state_dict']['backbone.swin.' + k], v), k

    backbone, _ = convert.build_backbone_from(voc_config(pretrained))
    again = convert.to_lean(full['state_dict'], backbone, None, 'full.pth')
    assert again.keys() == lean['state_dict'].keys()
    for k, v in lean['state_dict'].items():
        assert torch.equal(again[k], v), k


def test_other_weights_are_refused_naming_both_files(tmp_path):
    pretrained = swin_file(tmp_path / 'swin.pth', 0)
    other = swin_file(tmp_path / 'other.pth', 1)
    lean_path, _ = lean_checkpoint(tmp_path, pretrained)
    state = torch.load(lean_path)['state_dict']
    backbone, _ = convert.build_backbone_from(voc_config(pretrained))
    with pytest.raises(
            CheckpointError, match=f'{lean_path}: .*{pretrained}.*{other}'):
        convert.to_full(state, backbone, other, lean_path)
    full = convert.to_full(state, backbone, pretrained, lean_path)
    with pytest.raises(CheckpointError, match='full.pth: not a lean'):
        convert.to_full(full, backbone, pretrained, 'full.pth')
    with pytest.raises(CheckpointError, match='lean.pth: already lean'):
        convert.to_lean(state, backbone, pretrained, lean_path)


def test_a_config_training_the_whole_trunk_is_named(tmp_path):
    cfg = voc_config(swin_file(tmp_path / 'swin.pth', 0))
    cfg.model.backbone = dict(
        type='PretrainedSwinTransformer',
        frozen=False,
        **{
            k: cfg.model.backbone[k]
            for k in ('embed_dims', 'depths', 'num_heads', 'window_size',
                      'out_indices')
        })
    with pytest.raises(ValueError, match='voc.py: lean checkpoints need'):
        convert.build_backbone_from(cfg, 'voc.py')


def test_lean_training_checkpoint_stripped_to_its_weights(tmp_path):
    """--to lean --strip-optimizer on a lean training checkpoint keeps its
    weights as they are and drops the training state; without
    --strip-optimizer there is nothing to do, and it says what to add."""
    _, lean, lean_path, backbone = lean_run_and_backbone(tmp_path)
    out = convert.convert_checkpoint(
        lean, backbone, 'lean', lean_path, strip_optimizer=True)
    assert set(out) == {'meta', 'state_dict'}
    assert out['state_dict'].keys() == lean['state_dict'].keys()
    for k, v in lean['state_dict'].items():
        assert torch.equal(out['state_dict'][k], v), k
    with pytest.raises(
            CheckpointError,
            match='already lean; to keep only its weights, add '
            '--strip-optimizer'):
        convert.convert_checkpoint(lean, backbone, 'lean', lean_path)
