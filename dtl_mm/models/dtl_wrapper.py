"""``type='DTL'``: DTL around a library backbone config, unchanged.

As mmpretrain's ``LoRAModel`` takes the model it adapts as a config, a
config turns its backbone into a DTL one by wrapping the backbone dict::

    model = dict(backbone=dict(
        type='DTL',
        trunk=dict(type='mmdet.SwinTransformer', embed_dims=128, ...,
                   init_cfg=dict(type='Pretrained', checkpoint=...)),
        variant='dtlv2-ls', rank=256))

``trunk`` is the library's own backbone config (its ``type`` with or
without the library's scope). What is built is the registered DTL backbone
for that trunk (``TRUNK_ADAPTERS``), with the trunk's arguments and the DTL
options: the same model, parameter names and checkpoints as a config that
names that class, so the two forms are interchangeable. The trunk's
``init_cfg`` (where mmdet's / mmseg's configs put the pretrained file) is
the DTL backbone's.
"""
from mmengine.registry import MODELS

# (library scope, backbone type) -> the DTL backbone built around it,
# filled by each DTL backbone's ``@adapts``; a type without a scope is
# looked up in the config's library, then in any library that has it
TRUNK_ADAPTERS = {}


def adapts(library: str, backbone_type: str):
    """Class decorator: the DTL backbone for ``library``'s backbone
    ``backbone_type`` (what ``type='DTL', trunk=dict(type=...)`` builds)."""

    def register(cls):
        TRUNK_ADAPTERS[(library, backbone_type)] = cls.__name__
        return cls

    return register


def adapter_for(trunk_type: str, default_scope: str = None) -> str:
    """The DTL backbone for a library backbone type ('mmdet.SwinTransformer',
    or 'SwinTransformer' read in ``default_scope``); an error naming the
    trunks that have one."""
    scope, _, name = trunk_type.rpartition('.')
    found = [
        dtl for (lib, kind), dtl in TRUNK_ADAPTERS.items()
        if kind == name and (lib == scope if scope else lib == default_scope)
    ]
    if not found and not scope:  # another library's type of that name
        found = [
            dtl for (lib, kind), dtl in TRUNK_ADAPTERS.items() if kind == name
        ]
    if len(found) != 1:
        known = ', '.join(
            sorted(f'{lib}.{kind}' for lib, kind in TRUNK_ADAPTERS))
        why = 'has no DTL adapter' if not found else (
            f'is ambiguous ({", ".join(found)}): name its library, as in '
            f'"mmpretrain.{name}"')
        raise ValueError(f'DTL: trunk type {trunk_type!r} {why}; the trunks '
                         f'with one are {known}')
    return found[0]


@MODELS.register_module(name='DTL')
def build_dtl_backbone(trunk: dict, **dtl_options):
    """Builds the DTL backbone for ``trunk`` (a library backbone config):
    ``variant`` and the other DTL options (``DTLOptions``), ``with_cp``,
    ``lean_checkpoint`` and ``recompute_trunk`` (Swin) go beside it."""
    if not isinstance(trunk, dict) or 'type' not in trunk:
        raise TypeError(f'DTL: trunk must be a backbone config dict with a '
                        f'type, got {trunk!r}')
    from mmengine.registry import DefaultScope
    scope = DefaultScope.get_current_instance()
    trunk = dict(trunk)
    dtl_type = adapter_for(
        trunk.pop('type'), scope.scope_name if scope else None)
    clash = sorted(set(trunk) & set(dtl_options))
    if clash:
        raise ValueError(f'DTL: {clash} given both in trunk and beside it')
    return MODELS.build(dict(type=dtl_type, **trunk, **dtl_options))
