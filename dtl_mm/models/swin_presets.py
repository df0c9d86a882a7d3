"""The Swins dtl_mm uses: Swin-B and Swin-L as the paper uses them (window
7, ImageNet-22K) and the tiny Swin of the demo, the tests and the quick
benchmark runs.

The configs import this module rather than keeping these values in a shared
base config: mmengine leaves imported modules out of a config, so a dumped
config (``work_dir/*.py``) holds only what the run used.  A config imports
it below its ``_base_`` line: mmengine reads a config that starts with an
import as a new-style (lazy-import) config.  The checkpoints
are the official release files; point a config at a local copy with
``--cfg-options model.backbone.init_cfg.checkpoint=/path/to/FILE.pth``.
"""
_RELEASES = ('https://github.com/SwinTransformer/storage/releases/download/'
             'v1.0.0/')


def _release(embed_dims, num_heads, file):
    """A 24-block, window-7 Swin of the official ImageNet-22K release."""
    return dict(
        embed_dims=embed_dims,
        depths=[2, 2, 18, 2],
        num_heads=num_heads,
        window_size=7,
        init_cfg=dict(type='Pretrained', checkpoint=_RELEASES + file))


def stage_channels(swin):
    """Output channels of the four stages (necks and heads read these)."""
    return [swin['embed_dims'] * 2**i for i in range(len(swin['depths']))]


SWIN_B = _release(128, [4, 8, 16, 32], 'swin_base_patch4_window7_224_22k.pth')
SWIN_L = _release(192, [6, 12, 24, 48],
                  'swin_large_patch4_window7_224_22k.pth')
SWIN_B_CHANNELS = stage_channels(SWIN_B)
SWIN_L_CHANNELS = stage_channels(SWIN_L)

# 12 blocks, so the first add-back block M is 7 (the middle). No pretrained
# weights exist for it (configs set init_cfg=None); drop path is off so that
# runs are deterministic.
TINY_SWIN = dict(
    embed_dims=32,
    depths=[2, 2, 6, 2],
    num_heads=[1, 2, 4, 8],
    window_size=4,
    drop_path_rate=0.0)
TINY_SWIN_CHANNELS = stage_channels(TINY_SWIN)

# The Swin recipes exempt these from weight decay. mmengine matches the keys
# as substrings of parameter names; no CSN parameter name contains them
# (tests/test_configs/test_swin_configs.py checks it).
DECAY_EXEMPTIONS = {
    'absolute_pos_embed': dict(decay_mult=0.),
    'relative_position_bias_table': dict(decay_mult=0.),
    'norm': dict(decay_mult=0.),
}
