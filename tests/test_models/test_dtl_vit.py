"""Plain ViT trunks (mmseg's VisionTransformer): the frozen wrapper and DTL
on it. Identity at init, where the signal enters, what autograd keeps,
gradients, activation checkpointing, bad options."""
import pytest
import torch

from dtl_mm import paper_results
from dtl_mm.models import DTLVisionTransformer, PretrainedVisionTransformer
from dtl_mm.models.csn_layout import VARIANTS
from helpers.swin_utils import skip_random_init
from helpers.vit_utils import (TINY, check_every_csn_parameter_in_graph,
                               check_side_network_isolated, plain_vit,
                               randomise_all, saved_per_block)


def same_trunk(model, plain):
    model.vit.load_state_dict(plain.state_dict())
    return model


def dtl_and_plain(variant='dtlv2-ls', **opts):
    """A DTL ViT and mmseg's own ViT holding the same weights."""
    plain = plain_vit()
    model = DTLVisionTransformer(variant=variant, rank=8, **TINY, **opts)
    return same_trunk(model, plain), plain


def assert_equal_outputs(outs, ref):
    assert len(outs) == len(ref) == 4
    for a, b in zip(outs, ref):
        assert a.shape == b.shape and torch.equal(a, b)


@pytest.mark.parametrize('variant', VARIANTS)
def test_identity_at_init(variant):
    model, plain = dtl_and_plain(variant)
    # 64x64 is the configured size; 48x80 resizes the position embedding
    for shape in ((2, 3, 64, 64), (1, 3, 48, 80)):
        x = torch.randn(*shape)
        for train in (False, True):
            model.train(train), plain.train(train)
            assert_equal_outputs(model(x), plain(x))


def test_frozen_and_full_wrappers_compute_mmsegs_vit():
    x = torch.randn(2, 3, 64, 64)
    for frozen in (True, False):
        # the last output after the final LN
        plain = plain_vit(frozen, final_norm=True)
        model = same_trunk(
            PretrainedVisionTransformer(
                frozen=frozen, **dict(TINY, final_norm=True)), plain)
        assert_equal_outputs(model(x), plain(x))
        assert all(p.requires_grad != frozen for p in model.parameters())


@pytest.mark.parametrize('variant', VARIANTS)
def test_signal_enters_only_after_first_add_back(variant):
    model, plain = dtl_and_plain(variant)
    randomise_all(model.csn)
    model.eval(), plain.eval()
    first_g = model.layout.first_g
    assert first_g == 7  # the middle of 12 blocks, as the paper's ViT-B

    def record(vit, store):
        for i, layer in enumerate(vit.layers, start=1):
            layer.register_forward_pre_hook(
                lambda m, a, i=i: store.__setitem__(i, a[0].clone()))

    seen_dtl, seen_plain = {}, {}
    record(model.vit, seen_dtl)
    record(plain, seen_plain)
    x = torch.randn(1, 3, 64, 64)
    outs, ref = model(x), plain(x)
    # outputs of blocks 3 and 6 come before M; 9 and 12 after
    assert torch.equal(outs[0], ref[0]) and torch.equal(outs[1], ref[1])
    assert not torch.allclose(outs[2], ref[2])
    assert not torch.allclose(outs[3], ref[3])
    for i in range(1, first_g + 1):  # block inputs up to block M
        assert torch.equal(seen_dtl[i], seen_plain[i]), i
    after = first_g + 1  # G adds to the patch tokens, not the class token
    assert torch.equal(seen_dtl[after][:, 0], seen_plain[after][:, 0])
    assert not torch.allclose(seen_dtl[after][:, 1:], seen_plain[after][:, 1:])


@pytest.mark.parametrize('variant', VARIANTS)
def test_gradients_and_no_graph_before_first_add_back(variant):
    model, _ = dtl_and_plain(variant)
    randomise_all(model.csn)
    model.train()
    check_side_network_isolated(model, torch.randn(2, 3, 64, 64))


def test_every_csn_parameter_gets_a_gradient_at_init():
    check_every_csn_parameter_in_graph(dtl_and_plain('dtlv2-ls')[0])


def test_with_cp_same_results_fewer_saved_tensors():
    model, _ = dtl_and_plain('dtlv2-ls')
    randomise_all(model.csn)
    model.train()
    x = torch.randn(2, 3, 64, 64)
    results = {}
    for with_cp in (False, True):
        model.with_cp = with_cp
        model.zero_grad()
        saved, outs = saved_per_block(model, lambda: model(x))
        sum(o.square().mean() for o in outs).backward()
        results[with_cp] = (saved, outs,
                            [p.grad.clone() for p in model.csn.parameters()])
    (plain_saved, plain_outs, plain_grads) = results[False]
    (cp_saved, cp_outs, cp_grads) = results[True]
    for a, b in zip(plain_outs, cp_outs):
        assert torch.equal(a, b)
    for a, b in zip(plain_grads, cp_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # a checkpointed block keeps only its input
    m = model.layout.first_g
    assert sum(cp_saved.values()) < sum(plain_saved.values())
    assert all(cp_saved.get(i, 0) <= 1 for i in range(m + 1, 13))


def test_train_does_not_unfreeze():
    model, _ = dtl_and_plain('dtlv2')
    model.train()
    model.init_weights()
    assert not any(p.requires_grad for p in model.vit.parameters())
    assert all(p.requires_grad for p in model.csn.parameters())


def test_layout_is_one_stage_without_bridges():
    model, _ = dtl_and_plain('dtlv2-ls')
    lay = model.layout
    assert (lay.depths, lay.channels) == ((12, ), (64, ))
    # w by the rule (m = 4), G after every block from M = 7 on
    assert lay.w_blocks == (1, 6, 12) and lay.g_blocks == (7, 8, 9, 10, 11, 12)
    assert lay.bridge_stages == () and lay.lshare_blocks == (8, 9, 10, 11)
    assert set(lay.fusion_keys.values()) == {'s0'}


@pytest.mark.parametrize('opts,field', [
    (dict(variant='dtlv3'), 'variant'),
    (dict(rank=0), 'rank'),
    (dict(first_g_block=13), 'first_g_block'),
    (dict(g_blocks=[7, 13]), 'g_blocks'),
    (dict(w_blocks=[9], g_blocks=[7]), 'w_blocks'),
    (dict(kernel_size=4), 'kernel_size'),
    (dict(bridge='group'), 'bridge'),
    (dict(csn='stage_local'), 'csn'),
])
def test_bad_options_name_the_field(opts, field):
    opts = dict(dict(variant='dtlv2', rank=8), **opts)
    with pytest.raises(ValueError, match=f'`{field}`'):
        DTLVisionTransformer(**opts, **TINY)


def test_dtl_refuses_unfreezing():
    with pytest.raises(ValueError, match='PretrainedVisionTransformer'):
        DTLVisionTransformer(frozen=False, **TINY)


@pytest.mark.parametrize('opts,match', [
    (dict(output_cls_token=True), 'output_cls_token'),
    (dict(out_origin=True), 'out_origin'),
    (dict(pretrained='x.pth'), 'init_cfg'),
    (dict(out_indices=(2, 12)), 'out_indices'),
])
def test_wrapper_refuses_what_it_cannot_serve(opts, match):
    with pytest.raises(ValueError, match=match):
        PretrainedVisionTransformer(**dict(TINY, **opts))


def test_csn_works_at_any_input_size():
    model, plain = dtl_and_plain('dtlv1')
    randomise_all(model.csn)
    x = torch.randn(1, 3, 72, 40)  # a 9 x 5 patch grid
    outs = model(x)
    assert [o.shape[-2:] for o in outs] == [(9, 5)] * 4
    sum(o.sum() for o in outs).backward()


# ViT-B/16 as the paper's classification tables build it (d' = 2, M = 7);
# 'dtlv1-sparse' is DTLv1 with w and G placed by the DTLv2 rule (m = 4,
# n = 2; g stays one shared module, so n changes no count)
VIT_B16 = dict(embed_dims=768, num_layers=12, num_heads=12, patch_size=16)
PAPER_VIT_SETTINGS = {
    'dtlv1': dict(variant='dtlv1'),
    'dtlv1-sparse': dict(variant='dtlv1', w_every=4, g_every=2),
    'dtlv2': dict(variant='dtlv2'),
    'dtlv2-ls': dict(variant='dtlv2-ls'),
}
# the exact counts behind the paper's rounded figures
VIT_B16_COUNTS = {
    'dtlv1': 56064,
    'dtlv1-sparse': 28416,
    'dtlv2': 69120,
    'dtlv2-ls': 37632,
}


def vit_b16_trainable(**opts):
    with skip_random_init():  # only the sizes are counted
        model = DTLVisionTransformer(
            rank=paper_results.VIT_B16_RANK, init_cfg=None, **VIT_B16, **opts)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(p.numel() for p in model.csn.parameters())
    return trainable


@pytest.mark.parametrize('name', list(PAPER_VIT_SETTINGS))
def test_vit_b16_parameter_counts_match_paper(name):
    trainable = vit_b16_trainable(**PAPER_VIT_SETTINGS[name])
    assert trainable == VIT_B16_COUNTS[name]
    # the paper prints #p rounded to 0.01 M
    assert round(trainable / 1e6, 2) == paper_results.VIT_B16_PARAMS_M[name]


def test_vit_b16_imagenet_count_setting():
    """Table 2's DTLv2-LS 0.07 M: w at every block, one shared G; our
    L-Share adds gamma/beta only where the side state repeats, which it
    never does with a w at every block, so this is 0.059 M, and the
    paper's figure adds gamma/beta at the five later G (2 x 768 each)."""
    trainable = vit_b16_trainable(variant='dtlv2-ls', w_every=1)
    assert trainable == 59136
    with_every_affine = trainable + 5 * 2 * 768
    assert round(with_every_affine / 1e6, 2) == \
        paper_results.VIT_B16_IMAGENET_DTLV2_LS_M
