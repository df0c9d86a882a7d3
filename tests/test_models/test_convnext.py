"""ConvNeXt (mmpretrain's) as a trunk: the wrapper computes mmpretrain's
forward, DTL on it is the frozen ConvNeXt at initialisation, keeps no graph
before M, trains only its side network, checkpoints the same gradients,
loads mmpretrain's checkpoints all-or-nothing, saves lean checkpoints and
shares its trunk between tasks."""
import pytest
import torch
from mmengine.utils import digit_version

from dtl_mm.apis.multitask import check_same_trunk
from dtl_mm.models import (CheckpointLayoutError, DTLConvNeXt,
                           PretrainedConvNeXt)
from dtl_mm.models.csn_layout import VARIANTS
from dtl_mm.models.recompute import SELECTIVE_MIN_TORCH
from helpers.swin_utils import randomise
from helpers.vit_utils import saved_per_module

pytestmark = pytest.mark.mmpretrain

TINY = dict(
    arch=dict(depths=[2, 2, 6, 2], channels=[16, 32, 64, 128]),
    out_indices=[0, 1, 2, 3],
    drop_path_rate=0.0,
    layer_scale_init_value=1.0)


def plain(**kw):
    torch.manual_seed(0)
    return PretrainedConvNeXt(frozen=True, **dict(TINY, **kw)).eval()


def dtl(variant='dtlv2-ls', **kw):
    model = DTLConvNeXt(variant=variant, rank=4, **dict(TINY, **kw))
    model.load_state_dict(plain().state_dict(), strict=False)
    return model.eval()


def mmpretrain_file(path, model, head=True):
    """The trunk saved as an mmpretrain classification checkpoint: keys
    'backbone.*', only the last stage's norm, a classifier head."""
    sd = {
        f'backbone.{k}': v
        for k, v in model.convnext.state_dict().items()
        if not k.startswith(('norm0', 'norm1', 'norm2'))
    }
    if head:
        sd['head.fc.weight'] = torch.zeros(10, 128)
    torch.save({'meta': {}, 'state_dict': sd}, path)
    return str(path)


def test_the_wrapper_computes_mmpretrains_forward():
    model = plain()
    x = torch.randn(2, 3, 64, 96)
    ours, theirs = model(x), model.convnext(x)
    assert [tuple(o.shape) for o in ours] == [(2, 16, 16, 24), (2, 32, 8, 12),
                                              (2, 64, 4, 6), (2, 128, 2, 3)]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('variant', VARIANTS)
def test_dtl_is_the_frozen_convnext_at_initialisation(variant):
    x = torch.randn(2, 3, 64, 96)
    for a, b in zip(dtl(variant)(x), plain()(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('variant', VARIANTS)
def test_gradients_and_no_graph_before_first_add_back(variant):
    model = dtl(variant)
    randomise(model.csn)
    model.train()
    blocks = [b for stage in model.convnext.stages for b in stage]
    saved, outs = saved_per_module(blocks,
                                   lambda: model(torch.randn(2, 3, 64, 96)))
    sum(o.square().mean() for o in outs).backward()
    first_g = model.layout.first_g
    assert first_g == 7  # the middle of 12 blocks
    assert not [i for i in saved if i <= first_g]
    assert all(saved.get(i, 0) > 0 for i in range(first_g + 1, 13))
    for name, p in model.convnext.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    for name, p in model.csn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('policy', [True, 'selective', 'trunk'])
def test_checkpointing_gives_the_same_gradients(policy):
    """'selective' needs torch >= 2.4; before, it is refused by name (the
    branch of the torch this runs on)."""
    x = torch.randn(2, 3, 64, 96)
    if policy == 'selective' and digit_version(
            torch.__version__) < digit_version(SELECTIVE_MIN_TORCH):
        with pytest.raises(ValueError, match='needs torch >= 2.4'):
            dtl(with_cp=policy)
        return

    def grads(**kw):
        torch.manual_seed(1)
        model = dtl(**kw)
        torch.manual_seed(2)
        randomise(model.csn)
        model.train()
        sum(o.square().mean() for o in model(x)).backward()
        return {n: p.grad for n, p in model.csn.named_parameters()}

    ref = grads()
    got = grads(
        with_cp=True if policy == 'trunk' else policy,
        recompute_trunk=policy == 'trunk')
    for name, g in ref.items():
        torch.testing.assert_close(got[name], g, rtol=1e-5, atol=1e-6)


def test_an_mmpretrain_checkpoint_loads_and_a_partial_one_is_refused(tmp_path):
    source = plain()
    randomise(source.convnext)
    path = mmpretrain_file(tmp_path / 'convnext.pth', source)
    model = DTLConvNeXt(
        rank=4, init_cfg=dict(type='Pretrained', checkpoint=path), **TINY)
    model.init_weights()
    theirs, ours = source.convnext.state_dict(), model.convnext.state_dict()
    for k, v in theirs.items():
        if not k.startswith(('norm0', 'norm1', 'norm2')):
            assert torch.equal(ours[k], v), k
    assert model.trunk_record['source'] == path

    sd = torch.load(path)['state_dict']
    del sd['backbone.stages.2.3.depthwise_conv.weight']
    torch.save({'state_dict': sd}, tmp_path / 'partial.pth')
    with pytest.raises(CheckpointLayoutError, match='missing and would stay'):
        DTLConvNeXt(**TINY).load_pretrained(str(tmp_path / 'partial.pth'))
    deeper = mmpretrain_file(
        tmp_path / 'deeper.pth',
        plain(arch=dict(depths=[2, 2, 8, 2], channels=[16, 32, 64, 128])))
    with pytest.raises(CheckpointLayoutError, match='deeper'):
        DTLConvNeXt(**TINY).load_pretrained(deeper)
    # layer scale in the file, none in the config: another block
    no_scale = dict(TINY, layer_scale_init_value=0)
    with pytest.raises(
            CheckpointLayoutError,
            match=r'no place in this ConvNeXt, e\.g\. `stages\.0\.0\.gamma`: '
            r'the file has layer scale'):
        DTLConvNeXt(**no_scale).load_pretrained(path)


def test_lean_checkpoint_round_trip(tmp_path):
    source = plain()
    randomise(source.convnext)
    path = mmpretrain_file(tmp_path / 'convnext.pth', source)
    cfg = dict(rank=4, init_cfg=dict(type='Pretrained', checkpoint=path))
    model = DTLConvNeXt(**cfg, **TINY)
    model.init_weights()
    randomise(model.csn)
    state = model.state_dict()
    assert not [k for k in state if k.startswith('convnext.stages.')]
    again = DTLConvNeXt(**cfg, **TINY)
    again.load_state_dict(state)  # the trunk comes from its file again
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(model.eval()(x), again.eval()(x)):
        assert torch.equal(a, b)


def test_two_tasks_share_the_trunk_and_get_what_each_computes_alone():
    a, b = dtl('dtlv2-ls'), dtl('dtlv1', first_g_block=9)
    for model in (a, b):
        torch.manual_seed(3)
        randomise(model.csn)
    check_same_trunk([('a', a), ('b', b)])
    x = torch.randn(1, 3, 64, 64)
    keep = {w for m in (a, b) for w in m.layout.w_blocks if w <= 7}
    state = a.forward_shared(x, upto=7, keep=keep)
    for model in (a, b):
        for u, v in zip(model(x), model.forward_rest(state)):
            assert torch.equal(u, v)
