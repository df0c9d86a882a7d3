"""Where a plain ViT's weights sit in files, for mmseg's and mmpretrain's
``VisionTransformer`` alike: one schema, two libraries' names.

The layouts that load, under any ``[module.][backbone.][vit.]`` prefix:

- ``mmpretrain``: mmpretrain's own (``layers.N.ln1``, ``attn.qkv``,
  ``attn.gamma1.weight``, ``ffn.layers.0.0`` or ``ffn.w12``, final norm
  ``ln1``, ``pre_norm``); also an mmpretrain classifier;
- ``mmseg``: mmseg's (``attn.attn.in_proj_weight``, ``attn.attn.out_proj``,
  ``pre_ln``); also an mmseg segmentor;
- ``timm``: timm / DeiT / DeiT III / ViT releases (``blocks.N.norm1``,
  ``attn.qkv``, ``mlp.fc1``, ``gamma_1``, ``patch_embed.proj``, final
  ``norm``), as mmseg's ``vit2mmseg`` and mmpretrain's
  ``deit3_to_mmpretrain`` convert them;
- ``dinov2``: the official DINOv2 release (timm's names plus
  ``blocks.N.ls1.gamma``, the giant's ``mlp.w12`` / ``mlp.w3``, and
  ``mask_token``, a pre-training-only token that is ignored).

A whole dtl_mm model (``backbone.vit.*``) loads in its library's layout.
Every key is put into mmpretrain's names first, then into the model's
library's. The position embedding is resized to the model's patch grid
with the library's own resize (its ``interpolate_mode``), as the library
does on load; a class-token entry is dropped for mmpretrain's
``with_cls_token=False``. Refused, never dropped: a block weight the model
has no place for (layer scale or a SwiGLU MLP in the file but not in the
config), register tokens (DINOv2 with registers) and distillation tokens,
which neither library's ViT has.
"""
import math
import re

from mmengine.logging import print_log

from ..checkpoint.errors import CheckpointLayoutError
from ..checkpoint.trunk_weights import TrunkKeySchema, block_range

# timm / DINOv2 / mmseg names -> mmpretrain's; a block key is renamed by
# the first rule that matches after ``blocks.N.`` became ``layers.N.``
_BLOCK_RULES = (
    (r'\.norm1\.', '.ln1.'),
    (r'\.norm2\.', '.ln2.'),
    (r'\.mlp\.fc1\.', '.ffn.layers.0.0.'),
    (r'\.mlp\.fc2\.', '.ffn.layers.1.'),
    (r'\.mlp\.(w12|w3)\.', r'.ffn.\1.'),
    (r'\.ls1\.gamma$', '.attn.gamma1.weight'),
    (r'\.ls2\.gamma$', '.ffn.gamma2.weight'),
    (r'\.gamma_1$', '.attn.gamma1.weight'),
    (r'\.gamma_2$', '.ffn.gamma2.weight'),
    (r'\.attn\.attn\.in_proj_(weight|bias)$', r'.attn.qkv.\1'),
    (r'\.attn\.attn\.out_proj\.', '.attn.proj.'),
)
_OTHER_RULES = (
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^norm\.', 'ln1.'),
    (r'^pre_ln\.', 'pre_norm.'),
)
_BLOCK_RULES = tuple((re.compile(p), r) for p, r in _BLOCK_RULES)
_OTHER_RULES = tuple((re.compile(p), r) for p, r in _OTHER_RULES)
# a block, in any layout / in the model's keys
_BLOCK = re.compile(r'^(layers|blocks)\.\d+\.')
_LAYER = re.compile(r'^layers\.(\d+)\.')
PATCH_KEY = 'patch_embed.projection.weight'


def to_mmpretrain_key(key: str) -> str:
    """A ViT key of any supported layout in mmpretrain's names."""
    block = re.match(r'^(?:blocks|layers)\.(\d+)\.', key)
    if block:
        key = f'layers.{block.group(1)}.' + key[block.end():]
        rules = _BLOCK_RULES
    else:
        rules = _OTHER_RULES
    for pattern, repl in rules:
        new, n = pattern.subn(repl, key)
        if n:
            return new
    return key


class ViTKeys(TrunkKeySchema):
    """The plain-ViT schema; a subclass names one library's ViT."""
    name = 'ViT'
    library = 'mmpretrain'
    key = re.compile(
        r'^((?:module\.)?(?:backbone\.)?(?:vit\.)?)'
        r'((?:layers|blocks)\.\d+\..*|patch_embed\..*|cls_token|pos_embed|'
        r'pre_ln\..*|pre_norm\..*|ln1\..*|norm\..*|mask_token|'
        r'register_tokens|dist_token)$')
    expected = ("'[module.][backbone.][vit.]layers.N.*' (mmpretrain, mmseg, "
                "dtl_mm) or 'blocks.N.*' (timm, DeiT, DINOv2 releases)")
    shape_hint = 'another ViT size or patch size?'
    block = _LAYER
    # in a release, but no part of a dense-prediction trunk
    IGNORED = ('mask_token', )
    REFUSED = {
        'register_tokens':
        'register tokens (DINOv2 with registers): the '
        'library\'s VisionTransformer has none; use the release without '
        'registers',
        'dist_token':
        'a distillation token (a distilled DeiT): use the '
        'non-distilled release',
    }
    # what a block weight without a place in the model means, in
    # mmpretrain's names
    NO_PLACE = (
        (re.compile(r'gamma[12]\.'), 'layer scale (set a dinov2-* arch or '
         'layer_scale_init_value)'),
        (re.compile(r'\.ffn\.w(12|3)\.'), 'a SwiGLU MLP (DINOv2 giant: '
         "layer_cfgs=dict(ffn_type='swiglu_fused'))"),
        (re.compile(r'\.ffn\.layers\.'), 'an MLP of two Linear layers'),
    )

    def is_block(self, key):
        return bool(_BLOCK.match(key))

    def library_key(self, key: str) -> str:
        """A key in mmpretrain's names in the model's library's."""
        return key

    def to_model_keys(self, trunk, prefix, sd, filename):
        for key in sd:
            if key in self.REFUSED:
                raise CheckpointLayoutError(
                    f'{filename}: holds `{key}`, {self.REFUSED[key]}')
        if any(k.startswith('blocks.') for k in sd):
            layout = 'dinov2' if 'mask_token' in sd else 'timm'
        elif any('.attn.attn.' in k for k in sd):
            layout = 'mmseg'
        elif any('.attn.qkv.' in k for k in sd):
            layout = 'mmpretrain'
        else:
            layout = self.library
        converted = {}
        for key, value in sd.items():
            if key in self.IGNORED:
                continue
            new = self.library_key(to_mmpretrain_key(key))
            if new in converted:
                raise CheckpointLayoutError(
                    f'{filename}: two of its ViT weights would load into '
                    f'`{new}` (one of them `{key}`): several layouts in one '
                    f'file')
            converted[new] = value
        return converted, layout, len(sd) - len(converted)

    def name_blocks(self, stage, first, last):
        return f'layers.{block_range(first, last)}'

    def name_depths(self, depths):
        return f'num_layers {depths[0]}'

    def fit(self, trunk, sd, filename, layout):
        self.check_patch_size(trunk, sd, filename)
        if 'pos_embed' in sd:
            sd['pos_embed'] = self.fit_pos_embed(trunk, sd['pos_embed'],
                                                 filename)

    def no_place(self, key):
        key = to_mmpretrain_key(key)
        return next((w for p, w in self.NO_PLACE if p.search(key)),
                    'another block architecture')

    @staticmethod
    def check_patch_size(vit, sd, filename):
        """A file of another patch size is refused by that name, before its
        position embedding (another grid of tokens) is looked at."""
        mine = dict(vit.named_parameters()).get(PATCH_KEY)
        theirs = sd.get(PATCH_KEY)
        if mine is None or theirs is None or theirs.dim() != 4:
            return
        if tuple(theirs.shape[-2:]) != tuple(mine.shape[-2:]):
            raise CheckpointLayoutError(
                f'{filename}: a ViT of patch size '
                f'{"x".join(map(str, theirs.shape[-2:]))}, this config\'s has '
                f'{"x".join(map(str, mine.shape[-2:]))} ({PATCH_KEY}: '
                f'checkpoint {tuple(theirs.shape)} vs model '
                f'{tuple(mine.shape)}): set patch_size to the file\'s, or use '
                f'a file of this patch size')

    # -- the position embedding, on the model's patch grid --------------
    def extra_tokens(self, vit) -> int:
        """Entries of the model's position embedding before the grid's."""
        return vit.num_extra_tokens

    def patch_grid(self, vit) -> tuple:
        return tuple(vit.patch_resolution)

    def resize_pos_embed(self, vit, pos_embed, side: int):
        from mmpretrain.models.utils import resize_pos_embed
        return resize_pos_embed(pos_embed, (side, side), self.patch_grid(vit),
                                vit.interpolate_mode, self.extra_tokens(vit))

    def fit_pos_embed(self, vit, pos_embed, filename):
        """The file's position embedding on the model's patch grid, resized
        as the library resizes it on load; extra-token entries are kept (a
        class-token entry is dropped where the model has none)."""
        want = vit.pos_embed.shape
        extra = self.extra_tokens(vit)
        if pos_embed.dim() != 3 or pos_embed.shape[2] != want[2]:
            raise CheckpointLayoutError(
                f'{filename}: pos_embed: checkpoint {tuple(pos_embed.shape)} '
                f'vs model {tuple(want)} (another ViT width?)')
        if extra == 0 and math.isqrt(pos_embed.shape[1] - 1)**2 == \
                pos_embed.shape[1] - 1:
            pos_embed = pos_embed[:, 1:]  # the class token's entry
        if pos_embed.shape == want:
            return pos_embed
        side = math.isqrt(pos_embed.shape[1] - extra)
        if side * side != pos_embed.shape[1] - extra:
            raise CheckpointLayoutError(
                f'{filename}: pos_embed: checkpoint {tuple(pos_embed.shape)} '
                f'vs model {tuple(want)}: {pos_embed.shape[1]} tokens are not '
                f'{extra} extra token(s) plus a square patch grid')
        grid = self.patch_grid(vit)
        print_log(
            f'{filename}: resizing pos_embed from a {side}x{side} to a '
            f'{grid[0]}x{grid[1]} patch grid ({vit.interpolate_mode})',
            logger='current')
        return self.resize_pos_embed(vit, pos_embed, side)


class MMSegViTKeys(ViTKeys):
    """mmseg's names: fused attention projections, ``pre_ln``; its position
    embedding always has the class token's entry."""
    library = 'mmseg'
    _TO_MMSEG = (
        (re.compile(r'^(layers\.\d+\.attn\.)qkv\.(weight|bias)$'),
         r'\1attn.in_proj_\2'),
        (re.compile(r'^(layers\.\d+\.attn\.)proj\.'), r'\1attn.out_proj.'),
        (re.compile(r'^pre_norm\.'), 'pre_ln.'),
    )
    NO_PLACE = (
        (re.compile(r'gamma[12]\.'), 'layer scale (DINOv2, DeiT III): '
         'mmseg\'s ViT has none; use mmpretrain\'s '
         '(PretrainedMMPretrainViT, DTLMMPretrainViT)'),
        (re.compile(r'\.ffn\.w(12|3)\.'), 'a SwiGLU MLP (DINOv2 giant): '
         'mmseg\'s ViT has none; use mmpretrain\'s '
         '(PretrainedMMPretrainViT, DTLMMPretrainViT)'),
    )

    def library_key(self, key):
        for pattern, repl in self._TO_MMSEG:
            new, n = pattern.subn(repl, key)
            if n:
                return new
        return key

    def extra_tokens(self, vit):
        return 1

    def patch_grid(self, vit):
        return (vit.img_size[0] // vit.patch_size,
                vit.img_size[1] // vit.patch_size)

    def resize_pos_embed(self, vit, pos_embed, side):
        return vit.resize_pos_embed(pos_embed, self.patch_grid(vit),
                                    (side, side), vit.interpolate_mode)


MMSEG_VIT_KEYS = MMSegViTKeys()
MMPRETRAIN_VIT_KEYS = ViTKeys()
