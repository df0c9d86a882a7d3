"""Where the Compact Side Network reads (w) and adds back (G) in a trunk.

Blocks are numbered 1..N over all stages: ``w`` at block i reads the
block's *input* z_i, ``G`` at block i adds to its *output* z_{i+1}. This
module turns the user-facing options (:class:`DTLOptions`) into a
validated, immutable plan (:class:`CSNLayout`); it holds no tensors.
"""
import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

VARIANTS = ('dtlv1', 'dtlv2', 'dtlv2-ls')
SHARES = ('none', 'direct', 'lshare')
CSN_MODES = ('unified', 'stage_local')
BRIDGES = ('group', 'depthwise', 'conv', 'patch_merging',
           'frozen_patch_merging')
FUSIONS = ('enhanced', 'simple')
FUSION_OPS = ('dwconv', 'avgpool', 'conv')

# What each variant sets (paper Sec. 4-5); the options not listed here have
# the same default for every variant (see DTLOptions).
# yapf: disable
VARIANT_DEFAULTS = {
    'dtlv1':    dict(w_every=1, g_every=1, share='direct', csn='stage_local',
                     fusion='simple', fusion_op='dwconv', kernel_size=5),
    'dtlv2':    dict(w_every=4, g_every=2, share='none', csn='unified',
                     fusion='enhanced', fusion_op='dwconv', kernel_size=3),
    'dtlv2-ls': dict(w_every=4, g_every=2, share='lshare', csn='unified',
                     fusion='enhanced', fusion_op='dwconv', kernel_size=3),
}
# yapf: enable

# A plain ViT changes two of them, so that ViT-B/16 (d' = 2, M = 7) has the
# paper's VTAB / FGVC counts (Tables 3, 4 and 12; the arithmetic is in
# docs/architecture.md): G after every block from M on, as the authors' ViT
# code adds back after each of blocks 7-12; and DTLv2-LS, which Table 12
# builds from sparsified DTLv1 by turning its g into G, keeps DTLv1's k = 5.
VIT_VARIANT_DEFAULTS = {
    variant: dict(defaults, **changes)
    for (variant, defaults), changes in zip(VARIANT_DEFAULTS.items(), (
        {}, dict(g_every=1), dict(g_every=1, kernel_size=5)))
}


@dataclass(frozen=True, kw_only=True)
class DTLOptions:
    """The user-facing DTL switches; :meth:`for_variant` fills the defaults.

    Both DTL backbones take these as keyword arguments beside their trunk's
    own (:meth:`pop_from` separates them); the fields without a default are
    the ones the variants set (``VARIANT_DEFAULTS``), and
    :func:`build_layout` validates them against a backbone.

    Args:
        variant (str): 'dtlv1', 'dtlv2' or 'dtlv2-ls'; sets the defaults of
            every option below (paper Sec. 4-5).
        rank (int): d', the rank of every low-rank map (w and w').
        first_g_block (int): M, the first block whose output may get the side
            signal; None = the middle block (13 of 24, 7 of 12).
        w_every (int), g_every (int): m and n of the sparsity rule.
        w_blocks, g_blocks (list[int]): explicit positions (1-based, global
            block numbers) overriding the rule; w reads a block's input, G
            adds to its output.
        share (str): 'none' (one G per position), 'direct' (one G per stage),
            'lshare' (one G per stage + gamma/beta, Eq. 9).
        csn (str): 'unified' (h crosses stages through a bridge) or
            'stage_local' (h reset to 0 at each stage, DTLv1). Swin only.
        bridge (str): 'group' (group conv, C/x groups), 'depthwise', 'conv',
            'patch_merging' (a new trainable one) or 'frozen_patch_merging'
            (the backbone's own; its pretrained LayerNorm bias makes the
            model differ from the backbone at initialisation). Swin only.
        bridge_group_width (int): x in groups = C/x. Swin only.
        fusion (str): 'enhanced' (G = theta(g(h)) w' + h) or 'simple'
            (g(theta(h)), DTLv1).
        fusion_op (str): g: 'dwconv', 'avgpool' or 'conv'.
        kernel_size (int): k of g. beta (float): Swish's beta.
    """
    variant: str
    rank: int = 256  # d'
    # M, the first block that may get a G; None: the middle block
    first_g_block: Optional[int] = None
    w_every: int  # m: one w every m blocks of a stage
    g_every: int  # n: one G every n blocks of a stage, from block M on
    # explicit positions, overriding the every-m / every-n rule
    w_blocks: Optional[Sequence[int]] = None
    g_blocks: Optional[Sequence[int]] = None
    share: str
    csn: str
    bridge: str = 'group'
    bridge_group_width: int = 4
    fusion: str
    fusion_op: str
    kernel_size: int
    beta: float = 100.0

    @classmethod
    def for_variant(cls,
                    variant: str,
                    defaults: Optional[Dict[str, dict]] = None,
                    **overrides) -> 'DTLOptions':
        """The variant's defaults (``defaults``, a table like
        ``VARIANT_DEFAULTS``, which is the default), then the explicit
        values on top.

        An override of None keeps the default, so a config can pass every
        option through and set only some.
        """
        _choice('variant', variant, VARIANTS)
        names = {f.name for f in dataclasses.fields(cls)} - {'variant'}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f'unknown DTL option(s) {sorted(unknown)}')
        given = {k: v for k, v in overrides.items() if v is not None}
        table = VARIANT_DEFAULTS if defaults is None else defaults
        return cls(variant=variant, **dict(table[variant], **given))

    @classmethod
    def pop_from(cls,
                 kwargs: dict,
                 variant: str,
                 not_here: Sequence[str] = (),
                 backbone: str = 'this backbone',
                 defaults: Optional[Dict[str, dict]] = None) -> 'DTLOptions':
        """The DTL options among a backbone's keyword arguments, on the
        variant's defaults (``defaults``: see :meth:`for_variant`); they are
        removed from ``kwargs``, which keeps the trunk's own. ``not_here``:
        options ``backbone`` has no use for, an error when given."""
        names = {f.name for f in dataclasses.fields(cls)} - {'variant'}
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        unused = sorted(set(given) & set(not_here))
        if unused:
            listed = ', '.join(f'`{k}`' for k in unused)
            raise ValueError(f'DTL option {listed}: not used by {backbone}')
        return cls.for_variant(variant, defaults, **given)


@dataclass(frozen=True)
class CSNLayout:
    """The resolved plan: which blocks read, which fuse, what is shared."""
    depths: Tuple[int, ...]
    channels: Tuple[int, ...]
    # validated, with M (first_g_block) resolved to a block number
    options: DTLOptions = field(repr=False)
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

    @property
    def first_g(self) -> int:
        """The first block whose output receives the side signal."""
        return min(self.g_blocks)


def stage_of(depths: Sequence[int], block: int) -> int:
    """The stage (from 0) that holds block ``block`` (from 1)."""
    end = 0
    for s, d in enumerate(depths):
        end += d
        if block <= end:
            return s
    raise IndexError(block)


def stage_spans(depths: Sequence[int]) -> List[Tuple[int, int]]:
    """(first block, last block) of every stage."""
    ends = itertools.accumulate(depths)
    return [(end - d + 1, end) for d, end in zip(depths, ends)]


def feeds(w: int, g: int, depths: Sequence[int], csn: str) -> bool:
    """Does the w at the input of block ``w`` reach the G at block ``g``?

    h accumulates every read up to a G, so a w reaches every G at or after
    it; a stage-local CSN resets h at each stage, so only within its stage.
    """
    return g >= w and (csn == 'unified'
                       or stage_of(depths, g) == stage_of(depths, w))


def sparse_positions(first: int, last: int, every: int) -> List[int]:
    """ceil(len/every) positions floor(linspace(last, first)) in a stage.

    Counting back from the stage's last block puts a position at the end of
    every stage, so no stage output misses the side signal.
    """
    if last < first:
        return []
    k = math.ceil((last - first + 1) / every)
    return sorted({int(p) for p in np.floor(np.linspace(last, first, k))})


def build_layout(depths: Sequence[int],
                 channels: Sequence[int],
                 variant: Union[str, DTLOptions] = 'dtlv2-ls',
                 **overrides) -> CSNLayout:
    """The CSN plan for a backbone of ``depths`` / ``channels`` (per
    stage): from a variant name and option overrides, or from options."""
    depths, channels = tuple(depths), tuple(channels)
    if isinstance(variant, DTLOptions):
        options = dataclasses.replace(variant, **overrides)
    else:
        options = DTLOptions.for_variant(variant, **overrides)
    options = _validate(options, depths, channels)
    w_blocks, g_blocks = _positions(options, depths)
    w_blocks = _connected(
        'w_blocks', w_blocks, options.w_blocks is not None,
        lambda w: any(feeds(w, g, depths, options.csn) for g in g_blocks),
        f'feed no G block (g_blocks={g_blocks}, csn={options.csn!r}); their '
        f'parameters would never get a gradient')
    g_blocks = _connected(
        'g_blocks', g_blocks, options.g_blocks is not None,
        lambda g: any(feeds(w, g, depths, options.csn) for w in w_blocks),
        f'have no w block before them (w_blocks={w_blocks}); their fusion '
        f'would only ever see zeros')
    return CSNLayout(
        depths=depths,
        channels=channels,
        options=options,
        w_blocks=tuple(w_blocks),
        g_blocks=tuple(g_blocks),
        fusion_keys=_fusion_keys(g_blocks, options.share, depths),
        lshare_blocks=_lshare_blocks(w_blocks, g_blocks, options.share,
                                     depths),
        bridge_stages=_bridge_stages(w_blocks, g_blocks, options.csn, depths))


# ------------------------------------------------------------- validation
def _choice(name: str, value, allowed: Sequence):
    if value not in allowed:
        raise ValueError(f'DTL option `{name}`={value!r} is not one of '
                         f'{list(allowed)}')
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(name: str, value) -> None:
    if not _is_int(value) or value <= 0:
        raise ValueError(f'DTL option `{name}` must be a positive '
                         f'integer, got {value!r}')


def _check_blocks(name: str, blocks, total: int) -> List[int]:
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise ValueError(f'DTL option `{name}` must be a non-empty list of '
                         f'block indices in 1..{total}, got {blocks!r}')
    for b in blocks:
        if not _is_int(b) or not 1 <= b <= total:
            raise ValueError(
                f'DTL option `{name}` has block {b!r} outside 1..{total} '
                f'(blocks are numbered 1..{total} over all stages of depths)')
    if len(set(blocks)) != len(blocks):
        raise ValueError(f'DTL option `{name}` lists a block twice: {blocks}')
    return sorted(blocks)


def _validate(options: DTLOptions, depths: Tuple[int, ...],
              channels: Tuple[int, ...]) -> DTLOptions:
    """Check every option against the backbone; returns the options with M
    (``first_g_block``) resolved to a block number."""
    total = sum(depths)
    for name, allowed in (('variant', VARIANTS), ('share', SHARES),
                          ('csn', CSN_MODES), ('bridge', BRIDGES),
                          ('fusion', FUSIONS), ('fusion_op', FUSION_OPS)):
        _choice(name, getattr(options, name), allowed)
    for name in ('rank', 'w_every', 'g_every', 'kernel_size',
                 'bridge_group_width'):
        _positive_int(name, getattr(options, name))
    if options.kernel_size % 2 == 0:
        raise ValueError(f"DTL option `kernel_size` must be odd for 'same' "
                         f"padding, got {options.kernel_size}")
    if not options.beta > 0:
        raise ValueError(f'DTL option `beta` must be > 0, got {options.beta}')

    m_block = options.first_g_block
    if m_block is None:
        m_block = total // 2 + 1  # the middle block: 13 of 24
    if not isinstance(m_block, int) or not 1 <= m_block <= total:
        raise ValueError(f'DTL option `first_g_block` (M) = {m_block!r} is '
                         f'past the last block: the backbone has blocks '
                         f'1..{total} (depths {list(depths)})')

    if options.share != 'none' and options.fusion == 'simple' and \
            options.fusion_op == 'avgpool':
        raise ValueError(
            f'DTL option `share`={options.share!r} cannot be used with '
            f"fusion='simple' and `fusion_op`='avgpool': that fusion has no "
            f"parameters to share; set share='none' or another fusion_op")
    if options.csn == 'unified' and options.bridge == 'group':
        width = options.bridge_group_width
        if any(c % width for c in channels[:-1]):
            raise ValueError(
                f'DTL option `bridge_group_width`={width} must divide '
                f'every stage width {list(channels[:-1])} (groups = C/x)')
    return dataclasses.replace(options, first_g_block=m_block)


# -------------------------------------------------------------- positions
def _positions(options: DTLOptions,
               depths: Tuple[int, ...]) -> Tuple[List[int], List[int]]:
    """(w blocks, G blocks): the explicit lists, else one every m (w) and
    one every n from M on (G) in each stage, counted from its end."""
    total = sum(depths)
    stages = stage_spans(depths)
    if options.g_blocks is not None:
        g_blocks = _check_blocks('g_blocks', options.g_blocks, total)
    else:
        g_blocks = [
            b for first, last in stages for b in sparse_positions(
                max(first, options.first_g_block), last, options.g_every)
        ]
    if options.w_blocks is not None:
        w_blocks = _check_blocks('w_blocks', options.w_blocks, total)
    else:
        w_blocks = [
            b for first, last in stages
            for b in sparse_positions(first, last, options.w_every)
        ]
    return w_blocks, g_blocks


def _connected(name: str, blocks: List[int], explicit: bool, linked,
               why: str) -> List[int]:
    """The ``blocks`` (option ``name``) ``linked`` to a block of the other
    kind: a w that feeds some G (else it never trains), a G that some w
    feeds (else it only sees h = 0; a stage-local CSN's G before its
    stage's first w, ConvNeXt-B's 34 with m = 4, n = 2). A rule-placed one
    that is not is left out, and logged; an explicit one is an error, and
    so is a rule that leaves none."""
    unlinked = [b for b in blocks if not linked(b)]
    kept = [b for b in blocks if b not in unlinked]
    if unlinked and (explicit or not kept):
        rule = '' if explicit else ' (placed by the w_every / g_every rule)'
        raise ValueError(
            f'DTL option `{name}`{rule}: block(s) {unlinked} {why}')
    if unlinked:
        print_log(
            f'DTL layout: the rule\'s {name} {unlinked} are left out: they '
            f'{why}',
            logger='current')
    return kept


# ---------------------------------------------------------------- sharing
def _fusion_keys(g_blocks: List[int], share: str,
                 depths: Tuple[int, ...]) -> Dict[int, str]:
    """G block -> its fusion module: one per G (``b<block>``), or one per
    stage (``s<stage>``) when shared."""
    if share == 'none':
        return {g: f'b{g}' for g in g_blocks}
    return {g: f's{stage_of(depths, g)}' for g in g_blocks}


def _lshare_blocks(w_blocks: List[int], g_blocks: List[int], share: str,
                   depths: Tuple[int, ...]) -> Tuple[int, ...]:
    """With L-Share, the G blocks that see the same side state as the
    previous G of their stage (no w reads between the two): a shared fusion
    would give them the same signal, so gamma/beta tell them apart."""
    if share != 'lshare':
        return ()
    blocks = []
    for g in g_blocks:
        earlier = [
            p for p in g_blocks
            if p < g and stage_of(depths, p) == stage_of(depths, g)
        ]
        if earlier and not any(earlier[-1] < w <= g for w in w_blocks):
            blocks.append(g)
    return tuple(blocks)


# ---------------------------------------------------------------- bridges
def _bridge_stages(w_blocks: List[int], g_blocks: List[int], csn: str,
                   depths: Tuple[int, ...]) -> Tuple[int, ...]:
    """The stages whose h a unified CSN carries into the next stage: some w
    reads up to the stage's end and some G comes after it. A stage-local
    CSN restarts h at 0 in every stage: no bridges."""
    if csn != 'unified':
        return ()
    stages = stage_spans(depths)[:-1]
    return tuple(s for s, (_, last) in enumerate(stages)
                 if any(w <= last
                        for w in w_blocks) and any(g > last for g in g_blocks))
