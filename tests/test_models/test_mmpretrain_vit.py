"""Plain ViT trunks from mmpretrain (DeiT, ViT, DINOv2 with layer scale and
the giant's SwiGLU MLP): the frozen wrapper, DTL and LoRA on it, against
mmpretrain's own VisionTransformer. Needs mmpretrain (the `vision` stack):
marked `mmpretrain`, which `make test` runs in that environment."""
import copy

import pytest
import torch

from dtl_mm.models import (DTLMMPretrainViT, LoRAMMPretrainViT,
                           PretrainedMMPretrainViT)
from dtl_mm.models.csn_layout import VARIANTS
from dtl_mm.models.mmpretrain_vit import mmpretrain_vit_args
from helpers.mmpretrain_vit_utils import KINDS, plain_vit, tiny
from helpers.vit_utils import (check_every_csn_parameter_in_graph,
                               check_side_network_isolated, randomise_all,
                               saved_per_block)

pytestmark = pytest.mark.mmpretrain


def same_trunk(model, plain):
    model.vit.load_state_dict(plain.state_dict())
    return model


def dtl_and_plain(variant='dtlv2-ls', kind='dinov2', **opts):
    """A DTL ViT and mmpretrain's own ViT holding the same weights."""
    plain = plain_vit(kind)
    model = DTLMMPretrainViT(variant=variant, rank=8, **tiny(kind), **opts)
    return same_trunk(model, plain), plain


def assert_equal_outputs(outs, ref):
    assert len(outs) == len(ref) == 4
    for a, b in zip(outs, ref):
        assert a.shape == b.shape and torch.equal(a, b)


def test_dinov2_archs_are_mmpretrains_dinov2_configs():
    """dinov2-* expand as mmpretrain's configs/dinov2 build the backbone."""
    for name, arch, extra in [('dinov2-small', 'dinov2-small', {}),
                              ('dinov2-base', 'base', {}),
                              ('dinov2-large', 'large', {}),
                              ('dinov2-giant', 'dinov2-giant',
                               dict(layer_cfgs=dict(ffn_type='swiglu_fused')))
                              ]:
        assert mmpretrain_vit_args(dict(arch=name, img_size=518)) == dict(
            arch=arch,
            patch_size=14,
            layer_scale_init_value=1e-5,
            img_size=518,
            **extra)
    # an explicit argument wins over the preset
    assert mmpretrain_vit_args(dict(arch='dinov2-b', patch_size=16)) == \
        dict(arch='base', patch_size=16, layer_scale_init_value=1e-5)
    assert mmpretrain_vit_args(
        dict(arch='deit-base')) == dict(arch='deit-base')


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('variant', VARIANTS)
def test_identity_at_init(variant, kind):
    model, plain = dtl_and_plain(variant, kind)
    # 64x64 is the configured size; 48x80 resizes the position embedding
    for shape in ((2, 3, 64, 64), (1, 3, 48, 80)):
        x = torch.randn(*shape)
        for train in (False, True):
            model.train(train), plain.train(train)
            assert_equal_outputs(model(x), plain(x))


@pytest.mark.parametrize('kind', KINDS)
def test_frozen_and_full_wrappers_compute_mmpretrains_vit(kind):
    x = torch.randn(2, 3, 64, 64)
    for frozen in (True, False):
        plain = plain_vit(kind, frozen)
        model = same_trunk(
            PretrainedMMPretrainViT(frozen=frozen, **tiny(kind)), plain)
        assert_equal_outputs(model(x), plain(x))
        assert all(p.requires_grad != frozen for p in model.parameters())


def test_without_class_token_and_real_archs_build():
    plain = plain_vit(with_cls_token=False)
    model = same_trunk(
        DTLMMPretrainViT(rank=4, **tiny(with_cls_token=False)), plain)
    assert model.num_extra_tokens == 0
    x = torch.randn(1, 3, 64, 64)
    assert_equal_outputs(model(x), plain(x))
    # the real DINOv2-S: patch 14, layer scale, 12 blocks of 384
    small = DTLMMPretrainViT(
        arch='dinov2-small', img_size=112, out_indices=(2, 5, 8, 11))
    assert small.layout.first_g == 7 and small.channels == (384, )
    assert small.vit.layers[0].attn.gamma1.weight.shape == (384, )
    assert tuple(small.vit.patch_resolution) == (8, 8)


@pytest.mark.parametrize('kind', ['dinov2', 'dinov2-giant'])
def test_signal_enters_only_after_first_add_back(kind):
    """G adds to the patch tokens of block M's output, after its layer
    scale; the class token and everything up to M stay the frozen ViT's."""
    model, plain = dtl_and_plain('dtlv2-ls', kind)
    randomise_all(model.csn)
    model.eval(), plain.eval()
    first_g = model.layout.first_g
    assert first_g == 7

    def record(vit, store):
        for i, layer in enumerate(vit.layers, start=1):
            layer.register_forward_pre_hook(
                lambda m, a, i=i: store.__setitem__(i, a[0].clone()))

    seen_dtl, seen_plain = {}, {}
    record(model.vit, seen_dtl)
    record(plain, seen_plain)
    x = torch.randn(1, 3, 64, 64)
    outs, ref = model(x), plain(x)
    assert torch.equal(outs[0], ref[0]) and torch.equal(outs[1], ref[1])
    assert not torch.allclose(outs[2], ref[2])
    for i in range(1, first_g + 1):
        assert torch.equal(seen_dtl[i], seen_plain[i]), i
    after = first_g + 1
    assert torch.equal(seen_dtl[after][:, 0], seen_plain[after][:, 0])
    # the added signal is G's output itself, not scaled by the layer scale
    delta = seen_dtl[after][:, 1:] - seen_plain[after][:, 1:]
    layer = model.vit.layers[first_g - 1]
    with torch.no_grad():
        g_out = model.csn.fuse(first_g, model_h(model, x), (8, 8), False)
    torch.testing.assert_close(delta, g_out, rtol=1e-4, atol=1e-5)
    assert layer.attn.gamma1.weight.abs().max() < 0.5  # scale != 1


def model_h(model, x):
    """The side state h entering block M's fusion (reads at 1 and 6)."""
    state = model.forward_shared(x)
    h, extra = None, model.num_extra_tokens
    for block in sorted(model.layout.w_blocks):
        if block <= state.block:
            h = model.csn.read(block, state.inputs[block][:, extra:], h, False)
    return h


@pytest.mark.parametrize('kind', KINDS)
def test_gradients_and_no_graph_before_first_add_back(kind):
    model, _ = dtl_and_plain('dtlv2-ls', kind)
    randomise_all(model.csn)
    model.train()
    check_side_network_isolated(model, torch.randn(2, 3, 64, 64))


def test_every_csn_parameter_gets_a_gradient_at_init():
    check_every_csn_parameter_in_graph(dtl_and_plain('dtlv2')[0])


@pytest.mark.parametrize('with_cp', [True, 'selective'])
def test_with_cp_same_results_fewer_saved_tensors(with_cp):
    model, _ = dtl_and_plain('dtlv2-ls')
    randomise_all(model.csn)
    model.train()
    x = torch.randn(2, 3, 64, 64)
    results = {}
    for policy in (False, with_cp):
        model.with_cp = policy
        model.zero_grad()
        saved, outs = saved_per_block(model, lambda: model(x))
        sum(o.square().mean() for o in outs).backward()
        results[policy] = (saved, outs,
                           [p.grad.clone() for p in model.csn.parameters()])
    (plain_saved, plain_outs, plain_grads) = results[False]
    (cp_saved, cp_outs, cp_grads) = results[with_cp]
    for a, b in zip(plain_outs, cp_outs):
        assert torch.equal(a, b)
    for a, b in zip(plain_grads, cp_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert sum(cp_saved.values()) < sum(plain_saved.values())


@pytest.mark.parametrize('opts,field', [
    (dict(rank=0), 'rank'),
    (dict(first_g_block=13), 'first_g_block'),
    (dict(bridge='group'), 'bridge'),
])
def test_bad_options_name_the_field(opts, field):
    with pytest.raises(ValueError, match=f'`{field}`'):
        DTLMMPretrainViT(**dict(dict(variant='dtlv2', rank=8), **opts),
                         **tiny())


@pytest.mark.parametrize('cls', [DTLMMPretrainViT, LoRAMMPretrainViT])
def test_frozen_only_classes_refuse_unfreezing(cls):
    with pytest.raises(ValueError, match=r'PretrainedMMPretrainViT\(frozen'):
        cls(frozen=False, **tiny())


@pytest.mark.parametrize('opts,match', [
    (dict(out_type='cls_token'), 'out_type'),
    (dict(frozen_stages=3), 'frozen_stages'),
    (dict(pretrained='x.pth'), 'init_cfg'),
    (dict(out_indices=(2, 12)), 'out_indices'),
])
def test_wrapper_refuses_what_it_cannot_serve(opts, match):
    with pytest.raises(ValueError, match=match):
        PretrainedMMPretrainViT(**dict(tiny(), **opts))


# -- LoRA ------------------------------------------------------------------
@pytest.mark.parametrize('kind', ['dinov2', 'deit'])
def test_lora_identity_at_init_then_trains_only_lora_in_every_block(kind):
    plain = plain_vit(kind)
    model = LoRAMMPretrainViT(rank=4, **tiny(kind))
    # every ViT weight keeps mmpretrain's key: loads as a plain ViT
    assert set(model.trunk_keys) == set(plain.state_dict())
    missing, unexpected = model.vit.load_state_dict(
        plain.state_dict(), strict=False)
    assert not unexpected and all('.petl_lora.' in k for k in missing)
    x = torch.randn(1, 3, 64, 64)
    model.train(), plain.train()
    assert_equal_outputs(model(x), plain(x))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all('.attn.petl_lora.' in n for n in trainable)
    assert len(trainable) == 2 * 12  # A and C in each of 12 blocks
    randomise_all(model.vit.layers[0].attn.petl_lora)
    saved, outs = saved_per_block(model, lambda: model(x))
    sum(o.square().mean() for o in outs).backward()
    # gradients flow back through every block: each keeps activations
    assert all(saved.get(i, 0) > 0 for i in range(1, 13))
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    assert model.vit.layers[0].attn.petl_lora.down.weight.grad.abs().sum() > 0


def test_lora_bad_rank():
    with pytest.raises(ValueError, match='`rank`'):
        LoRAMMPretrainViT(rank=0, **tiny())


def test_deepcopy_keeps_its_own_lora():
    model = LoRAMMPretrainViT(rank=4, **tiny())
    other = copy.deepcopy(model)
    randomise_all(other.vit.layers[0].attn.petl_lora)
    x = torch.randn(1, 3, 64, 64)
    model.eval(), other.eval()
    assert not torch.equal(model(x)[0], other(x)[0])
