"""Parts of the Compact Side Network (CSN) and the CSN itself.

Tensors between trunk blocks are ``(B, H*W, C)`` with ``hw_shape = (H, W)``
(patch tokens; the walker strips a class token before a read);
the side state ``h`` uses the same layout, so reads and add-backs are plain
additions and only the spatial operators reshape to ``(B, C, H, W)``.
"""
import math
from functools import partial

import torch
import torch.nn.functional as F
from mmdet.models.layers import PatchMerging
from torch import nn

from .csn_layout import CSNLayout, stage_of
from .recompute import recompute


def to_map(x: torch.Tensor, hw_shape) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    B, _, C = x.shape
    return x.transpose(1, 2).reshape(B, C, *hw_shape)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


class LowRankMap(nn.Module):
    """w(x) = x A C with A: d x d' (kaiming-uniform) and C: d' x d (zero).

    The zero C makes w(x) exactly 0 at initialisation, so a freshly built
    DTL model computes exactly what the frozen backbone computes.
    """

    def __init__(self, dim: int, rank: int, out_dim: int = None):
        super().__init__()
        self.down = nn.Linear(dim, rank, bias=False)  # A
        self.up = nn.Linear(rank, out_dim or dim, bias=False)  # C
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)

    def forward(self, x):
        return self.up(self.down(x))


class Swish(nn.Module):
    """theta(x) = x * sigmoid(beta * x); beta = 100 keeps it sparse."""

    def __init__(self, beta: float = 100.0):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return x * torch.sigmoid(self.beta * x)

    def extra_repr(self):
        return f'beta={self.beta}'


def map_conv(in_dim: int, out_dim: int, k: int, **kwargs) -> nn.Conv2d:
    """A bias-free Conv2d over :func:`to_map`'s output, weight channels-last.

    ``to_map`` returns a channels-last view (no copy), so the weight's
    gradient comes back channels-last; a depthwise weight kept in the
    default layout then differs from its gradient in strides, and DDP warns
    "Grad strides do not match bucket view strides" (and copies each step).
    """
    conv = nn.Conv2d(in_dim, out_dim, k, bias=False, **kwargs)
    return conv.to(memory_format=torch.channels_last)


def spatial_op(kind: str, dim: int, k: int) -> nn.Module:
    """g: a 'same'-padded k x k operator on (B, C, H, W), bias-free so that
    g(0) = 0 (identity at initialisation)."""
    if kind == 'dwconv':
        return map_conv(dim, dim, k, padding=k // 2, groups=dim)
    if kind == 'conv':
        return map_conv(dim, dim, k, padding=k // 2)
    if kind == 'avgpool':
        return nn.AvgPool2d(
            k, stride=1, padding=k // 2, count_include_pad=False)
    raise ValueError(f"DTL option `fusion_op`={kind!r} is not one of "
                     f"['dwconv', 'avgpool', 'conv']")


class SimpleFusion(nn.Module):
    """DTLv1 fusion (Eq. 5): g(theta(h))."""

    def __init__(self, dim, fusion_op='dwconv', kernel_size=5, beta=100.0):
        super().__init__()
        self.act = Swish(beta)
        self.op = spatial_op(fusion_op, dim, kernel_size)

    def forward(self, h, hw_shape):
        return to_tokens(self.op(to_map(self.act(h), hw_shape)))


class EnhancedFusion(nn.Module):
    """DTLv2 fusion G (Eq. 7): theta(g(h)) w' + h."""

    def __init__(self,
                 dim,
                 fusion_op='dwconv',
                 kernel_size=3,
                 beta=100.0,
                 rank=256):
        super().__init__()
        self.op = spatial_op(fusion_op, dim, kernel_size)
        self.act = Swish(beta)
        self.proj = LowRankMap(dim, rank)  # w'

    def forward(self, h, hw_shape):
        return self.proj(self.act(to_tokens(self.op(to_map(h, hw_shape))))) + h


class LShareAffine(nn.Module):
    """L-Share (Eq. 9): G(h) * gamma + beta for a G position that sees the
    same side state as an earlier position using the same shared G."""

    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return x * self.gamma + self.shift


class ConvBridge(nn.Module):
    """Carries h across a stage boundary: kernel 2, stride 2, C -> 2C.

    ``groups`` = C / x gives the group conv of DTLv2 (x = 4), groups = C the
    depthwise bridge, groups = 1 the full conv. Odd H or W are zero-padded at
    the bottom/right exactly like Swin's PatchMerging ('corner' padding), so h
    keeps the backbone's ceil(H/2) x ceil(W/2) shape.
    """

    def __init__(self, dim, groups):
        super().__init__()
        self.conv = map_conv(dim, 2 * dim, 2, stride=2, groups=groups)

    def forward(self, h, hw_shape):
        x = to_map(h, hw_shape)
        x = F.pad(x, (0, hw_shape[1] % 2, 0, hw_shape[0] % 2))
        return to_tokens(self.conv(x))


class FrozenPatchMergingBridge(nn.Module):
    """The backbone's own (frozen) PatchMerging applied to h. It is held
    outside the module tree: its weights belong to, and are saved with, the
    trunk."""

    def __init__(self, merge: nn.Module):
        super().__init__()
        self._merge = [merge]  # a list, so it is not registered here

    def forward(self, h, hw_shape):
        return self._merge[0](h, hw_shape)[0]


class LearnedPatchMergingBridge(nn.Module):
    """A fresh, trainable PatchMerging (LN + linear 4C -> 2C). LN(0) = 0 with
    its zero-initialised bias, so identity at initialisation holds."""

    def __init__(self, dim):
        super().__init__()
        self.merge = PatchMerging(dim, 2 * dim)

    def forward(self, h, hw_shape):
        return self.merge(h, hw_shape)[0]


class CompactSideNetwork(nn.Module):
    """All trainable DTL parameters, laid out by a :class:`CSNLayout`.

    Modules are keyed by where they act: ``reads.b5`` is the w at the input
    of block 5, ``fusions.b13`` (or ``fusions.s2`` when shared per stage) the
    G at the output of block 13, ``lshare.b15`` L-Share's gamma/beta,
    ``bridges.s1`` the bridge from stage 1 to stage 2 (stages from 0).
    None of the names contains 'norm' or 'pos_embed', so Swin recipes'
    weight-decay exemptions (substring matches) do not reach them.
    """

    def __init__(self, layout: CSNLayout, frozen_merges=()):
        """``frozen_merges``: the Swin stages' PatchMerging modules, for the
        'frozen_patch_merging' bridge."""
        super().__init__()
        self.layout = layout
        opts = layout.options
        dims = layout.channels

        def width(block):  # channels at block ``block``
            return dims[stage_of(layout.depths, block)]

        self.reads = nn.ModuleDict({
            f'b{b}': LowRankMap(width(b), opts.rank)
            for b in layout.w_blocks
        })
        self.fusions = nn.ModuleDict()
        for b, key in layout.fusion_keys.items():
            if key not in self.fusions:
                self.fusions[key] = make_fusion(opts, width(b))
        self.lshare = nn.ModuleDict(
            {f'b{b}': LShareAffine(width(b))
             for b in layout.lshare_blocks})
        self.bridges = nn.ModuleDict({
            f's{s}': make_bridge(opts, dims[s],
                                 frozen_merges[s] if frozen_merges else None)
            for s in layout.bridge_stages
        })

    # Each public step takes the backbone's checkpointing policy ``cp``. The
    # side network is a few percent of the step's work, so under 'selective'
    # it is recomputed whole: only its region inputs are kept.

    def read(self, block, z, h, cp=False):
        """h_{i+1} = h_i + z_i w_i (Eq. 4); h is None until the first read."""
        return recompute(bool(cp), self._read, block, z, h)

    def fuse(self, block, h, hw_shape, cp=False):
        """The signal added to block ``block``'s output (Eq. 5/8/9)."""
        return recompute(bool(cp), self._fuse, block, h, hw_shape)

    def bridge(self, stage, h, hw_shape, cp=False):
        """h at the end of ``stage`` -> h at the start of stage + 1, or None
        where no bridge carries it."""
        return recompute(bool(cp), self._bridge, stage, h, hw_shape)

    def state_from_trunk(self, state, cp=False, extra=0):
        """h after the trunk's last block, from the block inputs the trunk
        kept (None when nothing reads inside the trunk); ``extra``: tokens
        before the patch tokens (a class token), which w does not read.

        One region: checkpointed, it keeps only those inputs, which the
        trunk keeps anyway, and recomputes the reads and bridges.
        """
        reads = [b for b in self.layout.w_blocks if b <= state.block]
        if not reads:
            return None
        run = partial(self._state_from_trunk, reads, state.block,
                      state.stage_hw)
        return recompute(
            bool(cp), run, *[state.inputs[b][:, extra:] for b in reads])

    def _state_from_trunk(self, reads, last, stage_hw, *zs):
        inputs = dict(zip(reads, zs))
        h, first = None, 1
        for s, depth in enumerate(self.layout.depths):
            end = first + depth - 1  # the stage's last block
            for block in range(first, min(end, last) + 1):
                if block in inputs:
                    h = self._read(block, inputs[block], h)
            if end >= last:  # the trunk ends in this stage
                return h
            h = self._bridge(s, h, stage_hw[s])
            first = end + 1
        return h

    def _read(self, block, z, h):
        r = self.reads[f'b{block}'](z)
        return r if h is None else h + r

    def _fuse(self, block, h, hw_shape):
        out = self.fusions[self.layout.fusion_keys[block]](h, hw_shape)
        if f'b{block}' in self.lshare:
            out = self.lshare[f'b{block}'](out)
        return out

    def _bridge(self, stage, h, hw_shape):
        if h is None or f's{stage}' not in self.bridges:
            return None  # a stage-local CSN, or nothing read yet
        return self.bridges[f's{stage}'](h, hw_shape)


def make_fusion(opts, dim: int) -> nn.Module:
    """G for a block of width ``dim``, as the options choose."""
    if opts.fusion == 'enhanced':
        return EnhancedFusion(dim, opts.fusion_op, opts.kernel_size, opts.beta,
                              opts.rank)
    return SimpleFusion(dim, opts.fusion_op, opts.kernel_size, opts.beta)


def make_bridge(opts, dim: int, frozen_merge=None) -> nn.Module:
    """The bridge carrying h from a stage of width ``dim`` to the next;
    ``frozen_merge``: the Swin's PatchMerging after that stage."""
    if opts.bridge == 'patch_merging':
        return LearnedPatchMergingBridge(dim)
    if opts.bridge == 'frozen_patch_merging':
        if frozen_merge is None:
            raise ValueError("bridge='frozen_patch_merging' needs the Swin's "
                             f'PatchMerging after the stage of width {dim}')
        return FrozenPatchMergingBridge(frozen_merge)
    groups = {
        'group': dim // opts.bridge_group_width,
        'depthwise': dim,
        'conv': 1
    }[opts.bridge]
    return ConvBridge(dim, groups)
