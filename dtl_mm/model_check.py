"""Pre-flight check of a model config: the backbone's outputs must be what
the neck and heads expect. A mismatch otherwise surfaces as a shape error
deep inside the first forward pass, after the data has loaded.
"""
import inspect


def swin_defaults():
    """mmdet's own SwinTransformer defaults, read from its signature (a
    config that leaves a field out gets these)."""
    from mmdet.models.backbones import SwinTransformer
    params = inspect.signature(SwinTransformer.__init__).parameters
    return {name: params[name].default
            for name in ('depths', 'embed_dims', 'out_indices')}


SWIN_TYPES = ('SwinTransformer', 'PretrainedSwinTransformer',
              'DTLSwinTransformer', 'LoRASwinTransformer',
              'AdapterSwinTransformer', 'AdaptFormerSwinTransformer')


def check_model_config(cfg):
    """The backbone's outputs must be what the neck / heads expect; a
    mismatch otherwise surfaces as a shape error deep in the first forward.
    """
    model = cfg.model
    bb = model.get('backbone') or {}
    if bb.get('type') not in SWIN_TYPES:
        return
    defaults = swin_defaults()
    depths = bb.get('depths', defaults['depths'])
    out_indices = tuple(bb.get('out_indices', defaults['out_indices']))
    if any(not 0 <= i < len(depths) for i in out_indices):
        raise ValueError(f'model.backbone.out_indices={out_indices}: the '
                         f'Swin has stages 0..{len(depths) - 1}')
    embed = bb.get('embed_dims', defaults['embed_dims'])
    chans = [embed * 2**i for i in out_indices]
    for name in ('neck', 'decode_head'):
        part = model.get(name)
        if isinstance(part, dict) and isinstance(
                part.get('in_channels'), (list, tuple)):
            index = part.get('in_index', list(range(len(chans))))
            index = index if isinstance(index, (list, tuple)) else [index]
            got, want = list(part['in_channels']), [
                chans[i] if i < len(chans) else None for i in index]
            if got != want:
                raise ValueError(
                    f'model.{name}.in_channels={got} does not match the '
                    f'backbone outputs: out_indices={out_indices} with '
                    f'embed_dims={embed} give {chans}')
    aux = model.get('auxiliary_head')
    if isinstance(aux, dict) and isinstance(aux.get('in_channels'), int):
        i = aux.get('in_index', -1)
        if not -len(chans) <= i < len(chans) or aux['in_channels'] != chans[i]:
            raise ValueError(
                f'model.auxiliary_head.in_channels={aux["in_channels"]} '
                f'(in_index={i}) does not match the backbone outputs {chans}')
