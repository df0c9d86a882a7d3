"""DTLSwinTransformer: layout, identity at init, where the signal enters,
gradients, parameter counts, odd sizes, bad options, torch versions."""
import pytest
import torch

from dtl_mm import paper_results
from dtl_mm.models import DTLSwinTransformer, build_layout
from dtl_mm.models.csn_layout import BRIDGES, FUSION_OPS, VARIANTS
from helpers.swin_utils import (SWIN_B, SWIN_L, TINY, plain_swin, randomise,
                                skip_random_init)
from helpers.vit_utils import saved_per_module

ALL_BRIDGES = [b for b in BRIDGES if b != 'frozen_patch_merging']


def dtl_and_plain(variant='dtlv2-ls', **opts):
    """A DTL model and a plain mmdet Swin holding the same Swin weights."""
    plain = plain_swin()
    model = DTLSwinTransformer(variant=variant, rank=8, **TINY, **opts)
    model.swin.load_state_dict(plain.state_dict())
    return model, plain


def test_default_positions_for_swin_b_l():
    lay = build_layout((2, 2, 18, 2), (128, 256, 512, 1024), 'dtlv2')
    assert lay.w_blocks == (2, 4, 5, 9, 13, 17, 22, 24)
    assert lay.g_blocks == (13, 15, 17, 19, 22, 24)
    assert lay.bridge_stages == (0, 1, 2)
    ls = build_layout((2, 2, 18, 2), (128, 256, 512, 1024), 'dtlv2-ls')
    assert ls.lshare_blocks == (15, 19)  # share 13's and 17's side state
    assert set(ls.fusion_keys.values()) == {'s2', 's3'}
    v1 = build_layout((2, 2, 18, 2), (128, 256, 512, 1024), 'dtlv1')
    assert v1.w_blocks == tuple(range(5, 25))
    assert v1.g_blocks == tuple(range(13, 25))
    assert v1.bridge_stages == ()


@pytest.mark.parametrize('depths,w,g', [
    ((2, 2, 6, 2), (2, 4, 5, 10, 12), (7, 10, 12)),
    ((2, 2, 2, 2), (2, 4, 6, 8), (6, 8)),
])
def test_default_positions_other_depths(depths, w, g):
    lay = build_layout(depths, (8, 16, 32, 64), 'dtlv2')
    assert (lay.w_blocks, lay.g_blocks) == (w, g)
    assert lay.options.first_g_block == sum(depths) // 2 + 1


@pytest.mark.parametrize('variant', VARIANTS)
def test_identity_at_init(variant):
    model, plain = dtl_and_plain(variant)
    x = torch.randn(2, 3, 64, 96)
    for train in (False, True):
        model.train(train)
        plain.train(train)
        outs, ref = model(x), plain(x)
        assert len(outs) == len(ref) == 4
        for a, b in zip(outs, ref):
            assert torch.equal(a, b)


@pytest.mark.parametrize('bridge', ALL_BRIDGES)
@pytest.mark.parametrize('fusion_op', FUSION_OPS)
def test_identity_at_init_every_bridge_and_fusion(bridge, fusion_op):
    model, plain = dtl_and_plain('dtlv2', bridge=bridge, fusion_op=fusion_op)
    model.eval(), plain.eval()
    x = torch.randn(1, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(model(x), plain(x)))


@pytest.mark.parametrize('variant', VARIANTS)
def test_signal_enters_only_from_first_g_block(variant):
    model, plain = dtl_and_plain(variant)
    randomise(model.csn)
    model.eval(), plain.eval()
    first_g = model.layout.first_g
    assert first_g == 7  # 12 blocks: stage 3 (blocks 5..10) gets it first

    def record(net, store):
        blocks = [b for st in net.stages for b in st.blocks]
        for i, blk in enumerate(blocks, start=1):
            blk.register_forward_hook(
                lambda m, a, out, i=i: store.__setitem__(i, out.clone()))

    seen_dtl, seen_plain = {}, {}
    record(model.swin, seen_dtl)
    record(plain, seen_plain)
    x = torch.randn(1, 3, 64, 96)
    outs, ref = model(x), plain(x)
    assert torch.equal(outs[0], ref[0]) and torch.equal(outs[1], ref[1])
    assert not torch.allclose(outs[2], ref[2])
    assert not torch.allclose(outs[3], ref[3])
    for i in range(1, first_g + 1):  # raw block outputs up to block M
        assert torch.equal(seen_dtl[i], seen_plain[i]), i
    assert not torch.allclose(seen_dtl[first_g + 1], seen_plain[first_g + 1])


@pytest.mark.parametrize('bridge', ALL_BRIDGES)
@pytest.mark.parametrize('fusion_op', FUSION_OPS)
def test_gradients_have_the_layout_of_their_weights(bridge, fusion_op):
    """DDP buckets each gradient in its parameter's layout and warns ("Grad
    strides do not match bucket view strides") when one differs."""
    model, _ = dtl_and_plain('dtlv2', bridge=bridge, fusion_op=fusion_op)
    randomise(model.csn)
    sum(o.sum() for o in model(torch.randn(1, 3, 64, 64))).backward()
    for name, p in model.csn.named_parameters():
        assert p.grad.stride() == p.stride(), name


@pytest.mark.parametrize('variant', VARIANTS)
def test_gradients_and_no_graph_before_first_add_back(variant):
    model, _ = dtl_and_plain(variant)
    randomise(model.csn)
    model.train()
    blocks = [b for st in model.swin.stages for b in st.blocks]
    x = torch.randn(2, 3, 64, 96)
    saved, outs = saved_per_module(blocks, lambda: model(x))
    sum(o.square().mean() for o in outs).backward()

    first_g = model.layout.first_g
    assert not [i for i in saved if i <= first_g]
    assert all(
        saved.get(i, 0) > 0 for i in range(first_g + 1,
                                           len(blocks) + 1))
    for name, p in model.swin.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    csn = list(model.csn.named_parameters())
    assert csn
    for name, p in csn:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_train_does_not_unfreeze():
    model, _ = dtl_and_plain('dtlv2')
    model.train()
    model.init_weights()
    assert not any(p.requires_grad for p in model.swin.parameters())
    assert all(p.requires_grad for p in model.csn.parameters())


# the paper's #p, which it rounds to 0.1 M (tests/test_configs.py holds our
# exact counts for every shipped config)
@pytest.mark.parametrize('task,arch,rank', [('coco', SWIN_B, 256),
                                            ('voc', SWIN_L, 128)])
def test_parameter_counts_match_paper(task, arch, rank):
    for variant in ('dtlv1', 'dtlv2', 'dtlv2-ls'):
        with skip_random_init():  # only the sizes are counted
            model = DTLSwinTransformer(variant=variant, rank=rank, **arch)
        trainable = sum(p.numel() for p in model.parameters()
                        if p.requires_grad)
        paper = paper_results.PARAMS_M[task][variant]
        assert abs(trainable / 1e6 - paper) <= 0.05, (variant, trainable)
        assert trainable == sum(p.numel() for p in model.csn.parameters())


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('bridge', BRIDGES)
def test_odd_sizes(variant, bridge):
    opts = dict(bridge=bridge)
    if variant == 'dtlv1':
        opts['csn'] = 'unified'  # give v1 a bridge so every type runs
    model, plain = dtl_and_plain(variant, **opts)
    randomise(model.csn)
    x = torch.randn(1, 3, 250, 330)  # H/4, W/4 = 63, 83 after padding
    outs, ref = model(x), plain(x)
    assert [o.shape for o in outs] == [r.shape for r in ref]
    assert outs[0].shape[-2:] == (63, 83) and outs[3].shape[-2:] == (8, 11)
    sum(o.sum() for o in outs).backward()


@pytest.mark.parametrize('opts,field', [
    (dict(variant='dtlv3'), 'variant'),
    (dict(rank=0), 'rank'),
    (dict(rank=-4), 'rank'),
    (dict(w_blocks=[0, 5]), 'w_blocks'),
    (dict(g_blocks=[7, 13]), 'g_blocks'),
    (dict(first_g_block=13), 'first_g_block'),
    (dict(variant='dtlv1', fusion_op='avgpool', share='direct'), 'share'),
    (dict(share='lshare', fusion='simple', fusion_op='avgpool'), 'share'),
    (dict(bridge='pm'), 'bridge'),
    (dict(kernel_size=4), 'kernel_size'),
    (dict(bridge_group_width=3), 'bridge_group_width'),
    (dict(csn='stage_local', w_blocks=[2, 8], g_blocks=[8]), 'w_blocks'),
])
def test_bad_configs_name_the_field(opts, field):
    opts = dict(dict(variant='dtlv2', rank=8), **opts)
    with pytest.raises(ValueError, match=f'`{field}`'):
        DTLSwinTransformer(**opts, **TINY)


def test_dtl_on_too_shallow_backbone():
    with pytest.raises(ValueError, match='`first_g_block`'):
        DTLSwinTransformer(variant='dtlv2', first_g_block=13, **TINY)


def test_checkpointing_policies_on_this_torch():
    """with_cp=True works on every supported torch; 'selective' needs torch's
    selective checkpointing (2.4) and, on an older torch, says so when it is
    asked for rather than when dtl_mm is imported."""
    from mmengine.utils import digit_version

    from dtl_mm.models.recompute import SELECTIVE_MIN_TORCH
    model, plain = dtl_and_plain('dtlv2-ls', with_cp=True)
    randomise(model.csn)
    x = torch.randn(1, 3, 64, 64)
    sum(o.sum() for o in model(x)).backward()
    assert all(p.grad is not None for p in model.csn.parameters())
    if digit_version(torch.__version__) >= digit_version(SELECTIVE_MIN_TORCH):
        DTLSwinTransformer(variant='dtlv2', with_cp='selective', **TINY)
    else:
        with pytest.raises(
                ValueError, match=r'with_cp="selective" needs torch >= 2\.4'):
            DTLSwinTransformer(variant='dtlv2', with_cp='selective', **TINY)
