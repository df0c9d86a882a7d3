"""Where the Compact Side Network reads (w) and adds back (G) in a Swin.

Blocks are numbered 1..N over all stages (SPEC §2): ``w`` at block i reads the
block's *input* z_i, ``G`` at block i adds to the block's *output* z_{i+1}.
This module turns the user-facing options into a validated, immutable plan;
it holds no tensors.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

VARIANTS = ('dtlv1', 'dtlv2', 'dtlv2-ls')
SHARES = ('none', 'direct', 'lshare')
CSN_MODES = ('unified', 'stage_local')
BRIDGES = ('group', 'depthwise', 'conv', 'patch_merging',
           'frozen_patch_merging')
FUSIONS = ('enhanced', 'simple')
FUSION_OPS = ('dwconv', 'avgpool', 'conv')

# Defaults per variant (paper Sec. 4-5, SPEC §2). Any of them can be
# overridden by the config; ``None`` for M means "the middle block".
VARIANT_DEFAULTS = {
    'dtlv1': dict(w_every=1, g_every=1, share='direct', csn='stage_local',
                  fusion='simple', fusion_op='dwconv', kernel_size=5),
    'dtlv2': dict(w_every=4, g_every=2, share='none', csn='unified',
                  fusion='enhanced', fusion_op='dwconv', kernel_size=3),
    'dtlv2-ls': dict(w_every=4, g_every=2, share='lshare', csn='unified',
                     fusion='enhanced', fusion_op='dwconv', kernel_size=3),
}
COMMON_DEFAULTS = dict(rank=256, first_g_block=None, w_blocks=None,
                       g_blocks=None, bridge='group', bridge_group_width=4,
                       beta=100.0)


def _choice(name: str, value, allowed: Sequence):
    if value not in allowed:
        raise ValueError(f'DTL option `{name}`={value!r} is not one of '
                         f'{list(allowed)}')
    return value


def sparse_positions(first: int, last: int, every: int) -> List[int]:
    """SPEC §2 rule: ceil(len/every) positions floor(linspace(last, first)).

    Counting back from the stage's last block puts a position at the end of
    every stage, so no stage output misses the side signal.
    """
    if last < first:
        return []
    k = math.ceil((last - first + 1) / every)
    return sorted({int(p) for p in np.floor(np.linspace(last, first, k))})


@dataclass(frozen=True)
class CSNLayout:
    """The resolved plan: which blocks read, which fuse, what is shared."""
    depths: Tuple[int, ...]
    channels: Tuple[int, ...]
    options: Dict = field(repr=False)
    w_blocks: Tuple[int, ...] = ()
    g_blocks: Tuple[int, ...] = ()
    # G block -> key of the fusion module it uses (shared keys repeat)
    fusion_keys: Dict[int, str] = field(default_factory=dict)
    # G blocks that get L-Share's gamma/beta (same side state as an earlier
    # G of the same shared module)
    lshare_blocks: Tuple[int, ...] = ()
    # stage s -> the bridge after stage s carries h into stage s + 1
    bridge_stages: Tuple[int, ...] = ()

    @property
    def num_blocks(self) -> int:
        return sum(self.depths)

    def stage_of(self, block: int) -> int:
        return stage_of(self.depths, block)

    @property
    def first_g(self) -> int:
        """The first block whose output receives the side signal."""
        return min(self.g_blocks)

    def __getattr__(self, name):
        # the resolved options (rank, share, fusion, ...) read as attributes
        options = self.__dict__.get('options', {})
        if name in options:
            return options[name]
        raise AttributeError(name)


def stage_of(depths: Sequence[int], block: int) -> int:
    end = 0
    for s, d in enumerate(depths):
        end += d
        if block <= end:
            return s
    raise IndexError(block)


def _check_blocks(name: str, blocks, total: int) -> List[int]:
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise ValueError(f'DTL option `{name}` must be a non-empty list of '
                         f'block indices in 1..{total}, got {blocks!r}')
    for b in blocks:
        if not isinstance(b, int) or isinstance(b, bool) or not 1 <= b <= total:
            raise ValueError(f'DTL option `{name}` has block {b!r} outside '
                             f'1..{total} (blocks are numbered 1..{total} over '
                             f'all stages of depths)')
    if len(set(blocks)) != len(blocks):
        raise ValueError(f'DTL option `{name}` lists a block twice: {blocks}')
    return sorted(blocks)


def resolve_options(variant: str, **overrides) -> Dict:
    """Variant defaults, then the config's explicit values on top."""
    _choice('variant', variant, VARIANTS)
    unknown = set(overrides) - set(COMMON_DEFAULTS) - set(
        VARIANT_DEFAULTS[variant])
    if unknown:
        raise TypeError(f'unknown DTL option(s) {sorted(unknown)}')
    opts = dict(COMMON_DEFAULTS, **VARIANT_DEFAULTS[variant])
    opts.update({k: v for k, v in overrides.items() if v is not None})
    opts['variant'] = variant
    return opts


def build_layout(depths: Sequence[int], channels: Sequence[int],
                 variant: str = 'dtlv2-ls', **overrides) -> CSNLayout:
    opts = resolve_options(variant, **overrides)
    depths, channels = tuple(depths), tuple(channels)
    total = sum(depths)

    for name, allowed in (('share', SHARES), ('csn', CSN_MODES),
                          ('bridge', BRIDGES), ('fusion', FUSIONS),
                          ('fusion_op', FUSION_OPS)):
        _choice(name, opts[name], allowed)
    for name in ('rank', 'w_every', 'g_every', 'kernel_size',
                 'bridge_group_width'):
        v = opts[name]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f'DTL option `{name}` must be a positive '
                             f'integer, got {v!r}')
    if opts['kernel_size'] % 2 == 0:
        raise ValueError(f"DTL option `kernel_size` must be odd for 'same' "
                         f"padding, got {opts['kernel_size']}")
    if not opts['beta'] > 0:
        raise ValueError(f"DTL option `beta` must be > 0, got {opts['beta']}")

    m_block = opts['first_g_block']
    if m_block is None:
        m_block = total // 2 + 1  # the middle block: 13 of 24
    if not isinstance(m_block, int) or not 1 <= m_block <= total:
        raise ValueError(f'DTL option `first_g_block` (M) = {m_block!r} is '
                         f'past the last block: the backbone has blocks '
                         f'1..{total} (depths {list(depths)})')
    opts['first_g_block'] = m_block

    if opts['share'] != 'none' and opts['fusion'] == 'simple' and \
            opts['fusion_op'] == 'avgpool':
        raise ValueError(
            f"DTL option `share`={opts['share']!r} cannot be used with "
            f"fusion='simple' and `fusion_op`='avgpool': that fusion has no "
            f"parameters to share; set share='none' or another fusion_op")
    if opts['csn'] == 'unified':
        width = opts['bridge_group_width']
        for c in channels[:-1]:
            if opts['bridge'] == 'group' and c % width:
                raise ValueError(
                    f'DTL option `bridge_group_width`={width} must divide '
                    f'every stage width {list(channels[:-1])} (groups = C/x)')

    starts = np.cumsum((0, ) + depths[:-1]) + 1
    stages = [(int(s), int(s) + d - 1) for s, d in zip(starts, depths)]

    if opts['g_blocks'] is not None:
        g_blocks = _check_blocks('g_blocks', opts['g_blocks'], total)
    else:
        g_blocks = [b for s, e in stages
                    for b in sparse_positions(max(s, m_block), e,
                                              opts['g_every'])]
    if opts['w_blocks'] is not None:
        w_blocks = _check_blocks('w_blocks', opts['w_blocks'], total)
    else:
        w_blocks = [b for s, e in stages
                    for b in sparse_positions(s, e, opts['w_every'])]

    def feeds(w: int) -> bool:
        # a w at the input of block w reaches every G at or after it, within
        # its stage when the CSN is stage-local
        return any(g >= w and (opts['csn'] == 'unified'
                               or stage_of(depths, g) == stage_of(depths, w))
                   for g in g_blocks)

    dead = [w for w in w_blocks if not feeds(w)]
    if dead and opts['w_blocks'] is not None:
        raise ValueError(
            f'DTL option `w_blocks`: block(s) {dead} feed no G block '
            f'(g_blocks={g_blocks}, csn={opts["csn"]!r}); their parameters '
            f'would never get a gradient')
    w_blocks = [w for w in w_blocks if w not in dead]
    starved = [g for g in g_blocks if not any(
        w <= g and (opts['csn'] == 'unified'
                    or stage_of(depths, g) == stage_of(depths, w))
        for w in w_blocks)]
    if starved:
        raise ValueError(
            f'DTL option `g_blocks`: block(s) {starved} have no w block '
            f'before them (w_blocks={w_blocks}); their fusion would only '
            f'ever see zeros')

    fusion_keys, lshare = {}, []
    for g in g_blocks:
        s = stage_of(depths, g)
        fusion_keys[g] = f's{s}' if opts['share'] != 'none' else f'b{g}'
    if opts['share'] == 'lshare':
        for g in g_blocks:
            s = stage_of(depths, g)
            earlier = [p for p in g_blocks if p < g and stage_of(depths, p) == s]
            # same side state: no w read between the earlier G and this one
            if earlier and not any(earlier[-1] < w <= g for w in w_blocks):
                lshare.append(g)

    bridges = []
    if opts['csn'] == 'unified':
        for s in range(len(depths) - 1):
            _, end = stages[s]
            if any(w <= end for w in w_blocks) and any(g > end
                                                       for g in g_blocks):
                bridges.append(s)

    return CSNLayout(depths=depths, channels=channels, options=opts,
                     w_blocks=tuple(w_blocks), g_blocks=tuple(g_blocks),
                     fusion_keys=fusion_keys, lshare_blocks=tuple(lshare),
                     bridge_stages=tuple(bridges))
