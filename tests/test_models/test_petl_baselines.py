"""PETL baselines: frozen Swin, gradients, sizes, identity at init."""
import copy

import pytest
import torch

from dtl_mm.models import (AdapterSwinTransformer, AdaptFormerSwinTransformer,
                           LoRASwinTransformer)
from dtl_mm.models.swin_presets import stage_channels
from helpers.swin_utils import TINY, plain_swin, randomise

# per block of width C: LoRA on qkv r(C + 3C); Adapter two bottlenecks
# 2 (2Cb + b + C); AdaptFormer one bottleneck 2Cb + b + C
EXPECTED = {
    LoRASwinTransformer: (dict(rank=4), lambda C: 4 * (C + 3 * C)),
    AdapterSwinTransformer: (dict(bottleneck=4), lambda C: 2 *
                             (2 * C * 4 + 4 + C)),
    AdaptFormerSwinTransformer:
    (dict(bottleneck=4), lambda C: 2 * C * 4 + 4 + C),
}


def build(cls):
    kw, _ = EXPECTED[cls]
    plain = plain_swin()
    model = cls(**kw, **TINY)
    model.swin.load_state_dict(plain.state_dict(), strict=False)
    return model, plain


@pytest.mark.parametrize('cls', list(EXPECTED))
def test_identity_at_init_and_plain_swin_keys(cls):
    model, plain = build(cls)
    # every Swin weight keeps its key: the pretrained loader sees a plain Swin
    assert set(plain.state_dict()) <= set(model.swin.state_dict())
    model.eval(), plain.eval()
    x = torch.randn(1, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(model(x), plain(x)))


@pytest.mark.parametrize('cls', list(EXPECTED))
def test_gradients_reach_only_petl_parameters(cls):
    model, plain = build(cls)
    randomise(model)
    model.train()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.square().mean() for o in outs).backward()
    petl = [(n, p) for n, p in model.named_parameters() if '.petl_' in n]
    assert petl
    for name, p in model.named_parameters():
        if '.petl_' in name:
            assert p.requires_grad and p.grad is not None \
                and p.grad.abs().sum() > 0, name
        else:
            assert not p.requires_grad and p.grad is None, name
    # the point of comparison with DTL: the early blocks keep a graph
    model.eval(), plain.eval()
    x = torch.randn(1, 3, 64, 64)
    assert not torch.allclose(model(x)[0], plain(x)[0])


@pytest.mark.parametrize('cls', list(EXPECTED))
def test_parameter_count_follows_size(cls):
    model, _ = build(cls)
    _, per_block = EXPECTED[cls]
    widths = [
        c for c, d in zip(stage_channels(TINY), TINY['depths'])
        for _ in range(d)
    ]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(per_block(c) for c in widths)


@pytest.mark.parametrize('cls', list(EXPECTED))
def test_deepcopy_keeps_hooks_on_the_copy(cls):
    model, _ = build(cls)
    clone = copy.deepcopy(model)
    randomise(clone)  # only the copy's PETL weights change
    model.eval(), clone.eval()
    x = torch.randn(1, 3, 64, 64)
    ref = model(x)
    assert not torch.allclose(clone(x)[0], ref[0])
    assert torch.equal(model(x)[0], ref[0])


def test_bad_sizes():
    with pytest.raises(ValueError, match='`rank`'):
        LoRASwinTransformer(rank=0, **TINY)
    with pytest.raises(ValueError, match='`bottleneck`'):
        AdapterSwinTransformer(bottleneck=-1, **TINY)
