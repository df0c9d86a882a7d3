"""The DTL options and the CSN plan built from them (no tensors, no
training)."""
import dataclasses

import pytest

from dtl_mm.models.csn_layout import (VARIANTS, DTLOptions, build_layout,
                                      feeds, stage_of)

SWIN_B_DEPTHS, SWIN_B_CHANNELS = (2, 2, 18, 2), (128, 256, 512, 1024)

SMALL = (2, 2, 6, 2)  # blocks 1-2 | 3-4 | 5-10 | 11-12


def test_options_are_frozen():
    opts = DTLOptions.for_variant('dtlv2')
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.rank = 8
    lay = build_layout(SMALL, (8, 16, 32, 64), 'dtlv2')
    with pytest.raises(dataclasses.FrozenInstanceError):
        lay.options = opts
    # the options are read from ``layout.options``, not from the layout
    assert not hasattr(lay, 'rank')


@pytest.mark.parametrize('variant,expected', [
    ('dtlv1',
     dict(
         w_every=1,
         g_every=1,
         share='direct',
         csn='stage_local',
         fusion='simple',
         fusion_op='dwconv',
         kernel_size=5)),
    ('dtlv2',
     dict(
         w_every=4,
         g_every=2,
         share='none',
         csn='unified',
         fusion='enhanced',
         fusion_op='dwconv',
         kernel_size=3)),
    ('dtlv2-ls',
     dict(
         w_every=4,
         g_every=2,
         share='lshare',
         csn='unified',
         fusion='enhanced',
         fusion_op='dwconv',
         kernel_size=3)),
])
def test_variant_defaults(variant, expected):
    opts = DTLOptions.for_variant(variant)
    assert opts.variant == variant
    assert {k: getattr(opts, k) for k in expected} == expected
    # the same for every variant
    assert (opts.rank, opts.bridge, opts.bridge_group_width,
            opts.beta) == (256, 'group', 4, 100.0)
    assert opts.first_g_block is opts.w_blocks is opts.g_blocks is None


def test_overrides_and_none_keeps_the_default():
    opts = DTLOptions.for_variant(
        'dtlv1', kernel_size=7, rank=None, share='none')
    assert (opts.kernel_size, opts.rank, opts.share) == (7, 256, 'none')
    assert opts.fusion == 'simple'  # not overridden: dtlv1's


def test_unknown_option_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"\['kernel', 'ranks'\]"):
        DTLOptions.for_variant('dtlv2', ranks=8, kernel=3)
    with pytest.raises(TypeError, match='ranks'):
        build_layout(SMALL, (8, 16, 32, 64), 'dtlv2', ranks=8)


def test_unknown_variant_names_the_field():
    with pytest.raises(ValueError, match='`variant`'):
        DTLOptions.for_variant('dtlv3')


def test_stage_of():
    assert [stage_of(SMALL, b)
            for b in range(1, 13)] == ([0, 0, 1, 1] + [2] * 6 + [3, 3])
    with pytest.raises(IndexError):
        stage_of(SMALL, 13)


def test_feeds_unified():
    # h accumulates across stages: a w reaches every G at or after it
    assert feeds(2, 7, SMALL, 'unified')
    assert feeds(7, 7, SMALL, 'unified')  # reads z_7, adds to z_8
    assert feeds(10, 11, SMALL, 'unified')
    assert not feeds(8, 7, SMALL, 'unified')


def test_feeds_stage_local():
    # h restarts in every stage: only G blocks of the w's own stage
    assert feeds(5, 7, SMALL, 'stage_local')
    assert feeds(7, 7, SMALL, 'stage_local')
    assert not feeds(2, 7, SMALL, 'stage_local')
    assert not feeds(10, 11, SMALL, 'stage_local')
    assert not feeds(8, 7, SMALL, 'stage_local')


def test_the_feeds_rule_drops_dead_reads_and_refuses_starved_g():
    # rule-placed w blocks of stages 0-1 feed no stage-local G: dropped
    lay = build_layout(SMALL, (8, 16, 32, 64), 'dtlv1')
    assert lay.w_blocks == tuple(range(5, 13))
    # an explicit w that feeds nothing, and a G that nothing feeds
    with pytest.raises(ValueError, match='`w_blocks`: block.*\\[2\\]'):
        build_layout(
            SMALL, (8, 16, 32, 64), 'dtlv1', w_blocks=[2, 7], g_blocks=[7])
    with pytest.raises(ValueError, match='`g_blocks`: block.*\\[11\\]'):
        build_layout(
            SMALL, (8, 16, 32, 64), 'dtlv1', w_blocks=[7], g_blocks=[7, 11])
    # the same positions are fine when h crosses stages
    lay = build_layout(
        SMALL, (8, 16, 32, 64),
        'dtlv1',
        csn='unified',
        w_blocks=[2, 7],
        g_blocks=[7, 11])
    assert lay.bridge_stages == (0, 1, 2)


@pytest.mark.parametrize('variant', VARIANTS)
def test_positions_for_swin_b_l(variant):
    # The paper's layout for Swin-B/L (24 blocks): DTLv2's G positions start
    # at block 13, M = the middle block; DTLv1 fuses at every block from 13.
    # Literal values from the layout code before the DTLOptions rewrite.
    expected = {
        'dtlv1': (tuple(range(5, 25)), tuple(range(13, 25))),
        'dtlv2': ((2, 4, 5, 9, 13, 17, 22, 24), (13, 15, 17, 19, 22, 24)),
        'dtlv2-ls': ((2, 4, 5, 9, 13, 17, 22, 24), (13, 15, 17, 19, 22, 24)),
    }
    lay = build_layout(SWIN_B_DEPTHS, SWIN_B_CHANNELS, variant)
    assert (lay.w_blocks, lay.g_blocks) == expected[variant]
    assert lay.options.first_g_block == lay.first_g == 13
    assert lay.num_blocks == 24
