"""Pretrained plain-ViT weights in each supported layout, position-embedding
resizing, refused files, and lean checkpoints of a frozen ViT."""
import functools

import pytest
import torch

from dtl_mm.models import (CheckpointLayoutError, DTLVisionTransformer,
                           PretrainedVisionTransformer, trunk_fingerprint)
from dtl_mm.models.vit_keys import MMSEG_VIT_KEYS
from helpers.checkpoint_utils import save
from helpers.vit_utils import (TINY, check_lean_round_trip, plain_vit,
                               to_mmpretrain_layout, to_timm_layout)


def source_vit(**kw):
    """A random ViT as a release holds it: with its final norm."""
    torch.manual_seed(1)
    return plain_vit(**dict(dict(final_norm=True), **kw))


def load_into_new(path, cls=DTLVisionTransformer, **kw):
    model = cls(
        init_cfg=dict(type='Pretrained', checkpoint=path), **dict(TINY, **kw))
    model.init_weights()
    return model


def assert_same_trunk(model, source):
    """Every trunk weight is the source's (the final norm only where the
    model has one)."""
    ref = source.state_dict()
    got = model.trunk_state()
    assert got
    for k, v in got.items():
        assert torch.equal(v, ref[k]), k


def test_mmseg_layout_plain_prefixed_and_whole_models(tmp_path):
    source = source_vit()
    sd = source.state_dict()
    files = {
        'backbone': sd,
        # an mmseg segmentor: backbone.* beside its heads
        'segmentor': {
            'state_dict': {
                **{'backbone.' + k: v
                   for k, v in sd.items()}, 'decode_head.conv_seg.weight':
                torch.zeros(2)
            }
        },
        # a whole dtl_mm segmentor, saved by DDP
        'dtl_mm': {
            'state_dict': {
                **{'module.backbone.vit.' + k: v
                   for k, v in sd.items()}, 'module.backbone.csn.x':
                torch.zeros(3)
            }
        },
    }
    for name, obj in files.items():
        path = save(tmp_path, name + '.pth', obj)
        assert_same_trunk(load_into_new(path), source)
        assert_same_trunk(load_into_new(path, final_norm=True), source)


@pytest.mark.parametrize('layout,convert',
                         [('timm', to_timm_layout),
                          ('mmpretrain', to_mmpretrain_layout)])
def test_release_layouts(tmp_path, layout, convert):
    source = source_vit()
    obj = convert(source.state_dict())
    state = obj.get('model', obj.get('state_dict'))
    assert MMSEG_VIT_KEYS.to_model_keys(None, '', state, 'f.pth')[1] == layout
    path = save(tmp_path, 'release.pth', obj)
    for final_norm in (True, False):
        model = load_into_new(path, final_norm=final_norm)
        assert_same_trunk(model, source)
        assert hasattr(model.vit, 'ln1') == final_norm


def test_position_embedding_resized_to_the_training_size(tmp_path):
    source = source_vit(img_size=32)  # a 4 x 4 patch grid
    path = save(tmp_path, 'small.pth', to_timm_layout(source.state_dict()))
    model = load_into_new(path)  # img_size 64: an 8 x 8 grid
    want = torch.nn.functional.interpolate(
        source.pos_embed[:, 1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2),
        size=(8, 8),
        mode='bicubic',
        align_corners=False).flatten(2).transpose(1, 2)
    assert model.vit.pos_embed.shape == (1, 65, 64)
    assert torch.equal(model.vit.pos_embed[:, 1:], want)
    # the class token's embedding is kept as it is
    assert torch.equal(model.vit.pos_embed[:, 0], source.pos_embed[:, 0])
    ref = source.state_dict()
    for k, v in model.trunk_state().items():
        if k != 'pos_embed':
            assert torch.equal(v, ref[k]), k
    # and the record is of the resized trunk the model runs
    assert model.trunk_record['sha256'] == trunk_fingerprint(
        model.trunk_state())


@pytest.mark.parametrize('kw,tensor,shapes', [
    (dict(patch_size=4, img_size=32), 'patch_embed.projection.weight',
     '(64, 3, 4, 4) vs model (64, 3, 8, 8)'),
    (dict(embed_dims=32), 'pos_embed', '(1, 65, 32) vs model (1, 65, 64)'),
])
def test_wrong_patch_or_width_names_the_tensor_and_both_shapes(
        tmp_path, kw, tensor, shapes):
    other = plain_vit(**kw)
    path = save(tmp_path, 'other.pth', to_timm_layout(other.state_dict()))
    with pytest.raises(CheckpointLayoutError) as err:
        load_into_new(path)
    assert tensor in str(err.value) and shapes in str(err.value)
    assert 'other.pth' in str(err.value)


def test_missing_weights_are_refused(tmp_path):
    sd = source_vit().state_dict()
    del sd['layers.4.attn.attn.in_proj_weight']
    with pytest.raises(
            CheckpointLayoutError,
            match=r'missing.*layers\.4\.attn\.attn\.in_proj_weight'):
        load_into_new(save(tmp_path, 'partial.pth', sd))


@pytest.mark.parametrize('key,match', [
    ('blocks.3.ls1.gamma', 'layer scale'),
    ('blocks.3.gamma_1', 'layer scale'),
    ('blocks.3.mlp.w12.weight', 'SwiGLU'),
    ('register_tokens', 'registers'),
    ('dist_token', 'distilled'),
])
def test_unsupported_releases_are_refused_by_name(tmp_path, key, match):
    release = to_timm_layout(source_vit().state_dict())['model']
    release[key] = torch.zeros(1, 4, 64)
    with pytest.raises(CheckpointLayoutError, match=match):
        load_into_new(save(tmp_path, 'release.pth', release))


def test_a_block_weight_without_a_place_is_refused(tmp_path):
    """A timm release with per-head query norms (as newer ViTs have): the
    model has no place for them, so the file is another block."""
    release = to_timm_layout(source_vit().state_dict())['model']
    release['blocks.2.attn.q_norm.weight'] = torch.ones(16)
    with pytest.raises(
            CheckpointLayoutError,
            match=r'\(timm layout\): 1 block weight\(s\) of the file have no '
            r'place in this ViT, e\.g\. `layers\.2\.attn\.q_norm\.weight`'):
        load_into_new(save(tmp_path, 'qnorm.pth', release))


def test_two_layouts_in_one_file_are_refused(tmp_path):
    sd = source_vit().state_dict()
    sd['norm.weight'] = sd['ln1.weight']  # timm's name of the final norm
    with pytest.raises(CheckpointLayoutError, match='would load into `ln1'):
        load_into_new(save(tmp_path, 'both.pth', sd))


def test_not_a_vit_file(tmp_path):
    path = save(tmp_path, 'swin.pth', {'stages.0.blocks.0.x': torch.ones(1)})
    with pytest.raises(CheckpointLayoutError, match='not a ViT checkpoint'):
        load_into_new(path)


# -- lean checkpoints ------------------------------------------------------
@pytest.mark.parametrize('cls', [DTLVisionTransformer, 'fixed'])
def test_lean_checkpoint_round_trip(tmp_path, cls):
    if cls == 'fixed':
        cls = functools.partial(PretrainedVisionTransformer, frozen=True)
    source = source_vit()
    path = save(tmp_path, 'release.pth', to_timm_layout(source.state_dict()))
    model = load_into_new(path, cls)
    # a release of the same shapes with other weights
    changed = dict(source.state_dict())
    changed['cls_token'] = changed['cls_token'] + 1
    wrong = save(tmp_path, 'wrong.pth', to_timm_layout(changed))

    def build(checkpoint):
        init = checkpoint and dict(type='Pretrained', checkpoint=checkpoint)
        return cls(init_cfg=init, **TINY)

    other = check_lean_round_trip(model, path, build, wrong)
    assert_same_trunk(other, source)


def test_lean_checkpoint_as_pretrained_file(tmp_path):
    """A lean checkpoint named as init_cfg: its trunk is the file it names,
    checked against its fingerprint."""
    source = source_vit()
    path = save(tmp_path, 'release.pth', to_timm_layout(source.state_dict()))
    model = load_into_new(path)
    lean = save(tmp_path, 'lean.pth', {
        'state_dict':
        {'backbone.' + k: v
         for k, v in model.state_dict().items()}
    })
    assert_same_trunk(load_into_new(lean), source)


def test_random_trunk_is_saved_in_full():
    model = PretrainedVisionTransformer(frozen=True, **TINY)
    state = model.state_dict()
    assert all('vit.' + k in state for k in model.trunk_keys)
    with pytest.raises(CheckpointLayoutError, match='lacks all'):
        PretrainedVisionTransformer(
            frozen=True,
            **TINY).load_state_dict({'_extra_state': state['_extra_state']})


@pytest.mark.parametrize('layout', ['mmseg segmentor', 'timm'])
def test_deeper_vit_of_the_same_width_is_refused(tmp_path, layout):
    """A 16-block ViT into a 12-block config: every model weight has a
    same-shaped tensor in the file, so only blocks 12..15 tell."""
    sd = source_vit(num_layers=16).state_dict()
    if layout == 'timm':
        obj = to_timm_layout(sd)
    else:  # beside a head the loader must ignore
        obj = {
            'state_dict': {
                **{'backbone.' + k: v
                   for k, v in sd.items()}, 'decode_head.conv_seg.weight':
                torch.zeros(2)
            }
        }
    path = save(tmp_path, 'deeper.pth', obj)
    with pytest.raises(
            CheckpointLayoutError,
            match=r'deeper\.pth .*layers\.12\.\.15.*file num_layers 16, '
            r'config num_layers 12'):
        load_into_new(path)


def test_another_patch_size_is_named_as_such(tmp_path):
    """A file of patch size 4 on a 8x12 grid (96 tokens: no square grid):
    refused for its patch size, not for its token count."""
    other = plain_vit(patch_size=4, img_size=(32, 48))
    path = save(tmp_path, 'patch4.pth', to_timm_layout(other.state_dict()))
    with pytest.raises(
            CheckpointLayoutError,
            match=r"patch4.pth: a ViT of patch size 4x4, this "
            r"config's has 8x8"):
        load_into_new(path)
