"""Pretrained weights into mmpretrain's ViT: each supported layout (files
written in the real on-disk formats) gives exactly the source's weights;
position-embedding resizing as mmpretrain's own loading; refused files; lean
checkpoints; multi-task sharing of the frozen blocks."""
import functools

import pytest
import torch

from dtl_mm.apis.multitask import (TrunkSharingError, check_same_trunk,
                                   shared_trunk_fingerprint)
from dtl_mm.models import (CheckpointLayoutError, DTLMMPretrainViT,
                           PretrainedMMPretrainViT)
from helpers.checkpoint_utils import save
from helpers.mmpretrain_vit_utils import (TINY_ARCH, plain_vit, tiny,
                                          to_dinov2_layout,
                                          to_mmpretrain_layout,
                                          to_mmseg_layout, to_timm_layout)
from helpers.vit_utils import check_lean_round_trip

pytestmark = pytest.mark.mmpretrain


def source_vit(kind='dinov2', **kw):
    torch.manual_seed(1)
    return plain_vit(kind, **kw)


def load_into_new(path, cls=DTLMMPretrainViT, kind='dinov2', **kw):
    model = cls(
        init_cfg=dict(type='Pretrained', checkpoint=path), **tiny(kind, **kw))
    model.init_weights()
    return model


def assert_same_trunk(model, source):
    ref = source.state_dict()
    got = model.trunk_state()
    assert got and set(got) == set(ref)
    for k, v in got.items():
        assert torch.equal(v, ref[k]), k


LAYOUTS = {
    'mmpretrain': to_mmpretrain_layout,
    'timm': to_timm_layout,
    'deit3': functools.partial(to_timm_layout, deit3=True),
    'dinov2': to_dinov2_layout,
    'mmseg': to_mmseg_layout,
}

# (layout, block kind): the layer-scale layouts only with layer scale
CASES = [(layout, kind) for layout in LAYOUTS
         for kind in ('dinov2', 'dinov2-giant', 'deit')
         if not (kind == 'deit' and layout in ('deit3', 'dinov2'))]


@pytest.mark.parametrize('layout,kind', CASES)
def test_every_layout_loads_exactly_the_source(tmp_path, layout, kind):
    source = source_vit(kind)
    path = save(tmp_path, f'{layout}.pth',
                LAYOUTS[layout](source.state_dict()))
    model = load_into_new(path, kind=kind)
    assert_same_trunk(model, source)
    report = model.load_trunk_weights(path)
    expected = 'timm' if layout == 'deit3' else layout
    assert report['layout'] == expected
    assert report['filled'] == len(list(source.parameters()))
    x = torch.randn(1, 3, 64, 64)
    model.eval(), source.eval()
    for a, b in zip(model(x), source(x)):
        assert torch.equal(a, b)


def test_whole_dtl_model_checkpoint_loads(tmp_path):
    source = source_vit()
    model = load_into_new(
        save(tmp_path, 'release.pth', to_dinov2_layout(source.state_dict())),
        lean_checkpoint=False)
    whole = save(tmp_path, 'whole.pth', {
        'state_dict':
        {'backbone.' + k: v
         for k, v in model.state_dict().items()}
    })
    assert_same_trunk(load_into_new(whole, PretrainedMMPretrainViT), source)


def test_position_embedding_resized_as_mmpretrain_does(tmp_path):
    """A release at another resolution (DINOv2: 518 = 37 x 14): resized to
    the model's grid exactly as mmpretrain's own load resizes it."""
    big = source_vit(img_size=80)  # a 10 x 10 grid
    path = save(tmp_path, 'dinov2.pth', to_dinov2_layout(big.state_dict()))
    model = load_into_new(path)  # 64: an 8 x 8 grid
    assert model.vit.pos_embed.shape == (1, 1 + 64, 64)
    from mmpretrain.models import VisionTransformer
    theirs = VisionTransformer(out_type='featmap', **tiny())
    theirs.load_state_dict(big.state_dict())  # its pre-hook resizes
    assert torch.equal(model.vit.pos_embed, theirs.pos_embed)
    assert not torch.equal(model.vit.pos_embed[:, 1:], big.pos_embed[:, 1:65])
    # the class token's entry is kept as it is
    assert torch.equal(model.vit.pos_embed[:, :1], big.pos_embed[:, :1])


def test_class_token_entry_dropped_without_class_token(tmp_path):
    source = source_vit()
    path = save(tmp_path, 'dinov2.pth', to_dinov2_layout(source.state_dict()))
    model = load_into_new(path, with_cls_token=False)
    assert torch.equal(model.vit.pos_embed, source.pos_embed[:, 1:])


@pytest.mark.parametrize('kw,tensor,shapes', [
    (dict(patch_size=16), 'patch_embed.projection.weight',
     r'checkpoint \(64, 3, 8, 8\) vs model \(64, 3, 16, 16\)'),
    (dict(
        arch=dict(
            embed_dims=96,
            num_layers=12,
            num_heads=2,
            feedforward_channels=128)), 'pos_embed',
     r'checkpoint \(1, 65, 64\) vs model \(1, 65, 96\)'),
])
def test_wrong_patch_or_width_names_the_tensor_and_both_shapes(
        tmp_path, kw, tensor, shapes):
    path = save(tmp_path, 'r.pth', to_dinov2_layout(source_vit().state_dict()))
    with pytest.raises(CheckpointLayoutError, match=f'{tensor}: {shapes}'):
        load_into_new(path, **kw)


@pytest.mark.parametrize('file_kind,model_kind,match', [
    ('dinov2', 'deit', r'`layers\.\d+\.attn\.gamma1\.weight`.*layer scale'),
    ('dinov2-giant', 'dinov2',
     r'`layers\.\d+\.ffn\.w12\.(weight|bias)`.*SwiGLU'),
])
def test_a_block_the_model_lacks_is_refused_not_dropped(
        tmp_path, file_kind, model_kind, match):
    path = save(tmp_path, 'r.pth',
                to_dinov2_layout(source_vit(file_kind).state_dict()))
    with pytest.raises(CheckpointLayoutError, match=match):
        load_into_new(path, kind=model_kind)


def test_missing_weights_are_refused(tmp_path):
    state = to_dinov2_layout(source_vit().state_dict())
    state.pop('blocks.3.ls2.gamma')
    with pytest.raises(
            CheckpointLayoutError,
            match=r'1 frozen ViT weight.*layers\.3\.ffn\.gamma2\.weight'):
        load_into_new(save(tmp_path, 'r.pth', state))


@pytest.mark.parametrize('key,match', [
    ('register_tokens', 'register tokens'),
    ('dist_token', 'distillation token'),
])
def test_unsupported_releases_are_refused_by_name(tmp_path, key, match):
    state = to_dinov2_layout(source_vit().state_dict())
    state[key] = torch.zeros(1, 4, 64)
    with pytest.raises(CheckpointLayoutError, match=f'`{key}`.*{match}'):
        load_into_new(save(tmp_path, 'r.pth', state))


def test_not_a_vit_file(tmp_path):
    path = save(tmp_path, 'swin.pth', {'stages.0.blocks.0.x': torch.ones(1)})
    with pytest.raises(CheckpointLayoutError, match='not a ViT checkpoint'):
        load_into_new(path)


@pytest.mark.parametrize('cls', [DTLMMPretrainViT, 'fixed'])
def test_lean_checkpoint_round_trip(tmp_path, cls):
    if cls == 'fixed':
        cls = functools.partial(PretrainedMMPretrainViT, frozen=True)
    source = source_vit()
    path = save(tmp_path, 'release.pth', to_dinov2_layout(source.state_dict()))
    model = load_into_new(path, cls)
    changed = to_dinov2_layout(source.state_dict())
    changed['blocks.0.ls1.gamma'] = changed['blocks.0.ls1.gamma'] + 1
    wrong = save(tmp_path, 'wrong.pth', changed)

    def build(checkpoint):
        init = checkpoint and dict(type='Pretrained', checkpoint=checkpoint)
        return cls(init_cfg=init, **tiny())

    other = check_lean_round_trip(model, path, build, wrong)
    assert_same_trunk(other, source)


def test_lean_checkpoint_as_pretrained_file(tmp_path):
    source = source_vit()
    path = save(tmp_path, 'release.pth', to_dinov2_layout(source.state_dict()))
    model = load_into_new(path)
    lean = save(tmp_path, 'lean.pth', {
        'state_dict':
        {'backbone.' + k: v
         for k, v in model.state_dict().items()}
    })
    assert_same_trunk(load_into_new(lean), source)


# -- multi-task sharing of blocks 1..M --------------------------------------
def test_two_tasks_share_blocks_up_to_the_smallest_m(tmp_path):
    source = source_vit()
    path = save(tmp_path, 'release.pth', to_dinov2_layout(source.state_dict()))

    class Seg(torch.nn.Module):
        """The least a task model needs: a backbone and a predict step."""

        def __init__(self, **opts):
            super().__init__()
            self.backbone = load_into_new(path, **opts)
            for p in self.backbone.csn.parameters():
                torch.nn.init.normal_(p, std=0.02)

    a, b = Seg(), Seg(first_g_block=9)
    assert a.backbone.FAMILY == 'mmpretrain ViT'
    check_same_trunk([('a', a.backbone), ('b', b.backbone)])
    assert shared_trunk_fingerprint(a.backbone) == \
        shared_trunk_fingerprint(b.backbone)
    # both computed from one shared trunk state == each alone
    x = torch.randn(1, 3, 64, 64)
    a.eval(), b.eval()
    keep = {w for t in (a, b) for w in t.backbone.layout.w_blocks if w <= 7}
    state = a.backbone.forward_shared(x, upto=7, keep=keep)
    for task in (a, b):
        alone = task.backbone(x)
        shared = task.backbone.forward_rest(state)
        assert all(torch.equal(u, v) for u, v in zip(alone, shared))

    changed = to_dinov2_layout(source.state_dict())
    changed['blocks.2.attn.qkv.weight'] += 1e-3
    other = load_into_new(save(tmp_path, 'other.pth', changed))
    with pytest.raises(TrunkSharingError, match='different frozen'):
        check_same_trunk([('a', a.backbone), ('c', other)])
    deit = load_into_new(
        save(tmp_path, 'deit.pth',
             to_timm_layout(source_vit('deit').state_dict())),
        kind='deit')
    with pytest.raises(TrunkSharingError, match='different'):
        check_same_trunk([('a', a.backbone), ('d', deit)])


@pytest.mark.parametrize('layout', ['mmpretrain', 'dinov2'])
def test_deeper_vit_of_the_same_width_is_refused(tmp_path, layout):
    """A 16-block ViT into a 12-block config: named as the blocks the
    model lacks, with both depths."""
    deeper = source_vit(arch=dict(TINY_ARCH, num_layers=16))
    path = save(tmp_path, 'deeper.pth', LAYOUTS[layout](deeper.state_dict()))
    with pytest.raises(
            CheckpointLayoutError,
            match=r'deeper\.pth .*layers\.12\.\.15.*file num_layers 16, '
            r'config num_layers 12'):
        load_into_new(path)
