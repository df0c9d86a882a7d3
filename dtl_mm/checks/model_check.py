"""Pre-flight checks of a model config: the backbone's outputs must be what
the neck and heads expect, and every head must predict the data set's
classes. A mismatch otherwise surfaces as a shape error deep inside the
first forward pass, after the data has loaded, or not at all.
"""
import inspect

from .data_check import leaf_datasets


def swin_defaults():
    """mmdet's own SwinTransformer defaults, read from its signature (a
    config that leaves a field out gets these)."""
    from mmdet.models.backbones import SwinTransformer
    params = inspect.signature(SwinTransformer.__init__).parameters
    return {
        name: params[name].default
        for name in ('depths', 'embed_dims', 'out_indices')
    }


SWIN_TYPES = ('SwinTransformer', 'PretrainedSwinTransformer',
              'DTLSwinTransformer', 'LoRASwinTransformer',
              'AdapterSwinTransformer', 'AdaptFormerSwinTransformer')
VIT_TYPES = ('PretrainedVisionTransformer', 'DTLVisionTransformer',
             'PretrainedMMPretrainViT', 'DTLMMPretrainViT',
             'LoRAMMPretrainViT')

# the heads whose num_classes is the data set's number of classes
CLASS_HEADS = ('roi_head.bbox_head', 'roi_head.mask_head', 'bbox_head',
               'decode_head', 'auxiliary_head')


def dataset_default_classes(cfg, types):
    """(classes, 'TYPE.METAINFO') of the first dataset class among
    ``types`` that has a default class list, in the config's scope's
    registry; (None, None) when none has."""
    scope = cfg.get('default_scope')
    try:
        if scope == 'mmseg':
            from mmseg.registry import DATASETS
        elif scope == 'mmdet':
            from mmdet.registry import DATASETS
        else:
            return None, None
    except ImportError:
        return None, None
    for name in types:
        cls = DATASETS.get(name) if isinstance(name, str) else None
        classes = (getattr(cls, 'METAINFO', None) or {}).get('classes')
        if classes:
            return tuple(classes), f'{name}.METAINFO'
    return None, None


def check_num_classes(cfg):
    """Every head must predict the classes the config's data set names
    (``metainfo.classes``); a head left at the base config's count (80 for
    COCO, 150 for ADE20K) trains without complaint and predicts classes the
    data set does not have."""
    classes, source, types = None, 'metainfo.classes', []
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        for ds in leaf_datasets(loader['dataset']) if loader else []:
            classes = classes or (ds.get('metainfo') or {}).get('classes')
            types.append(ds.get('type'))
    if not classes:
        # none configured: the dataset class's own (COCO 80, VOC 20,
        # ADE20K 150), which its label values follow
        classes, source = dataset_default_classes(cfg, types)
    if not classes:
        return
    wrong = []
    for path in CLASS_HEADS:
        head = cfg.model
        for key in path.split('.'):
            head = head.get(key) if isinstance(head, dict) else None
        heads = head if isinstance(head, (list, tuple)) else [head]
        for i, h in enumerate(heads):
            n = h.get('num_classes') if isinstance(h, dict) else None
            if isinstance(n, int) and n != len(classes):
                at = f'.{i}' if isinstance(head, (list, tuple)) else ''
                wrong.append(f'model.{path}{at}.num_classes={n}')
    if wrong:
        shown = tuple(classes) if len(classes) <= 10 else (
            f'({", ".join(map(repr, classes[:3]))}, ...)')
        raise ValueError(f'{", ".join(wrong)}: the data set has '
                         f'{len(classes)} classes {shown} ({source}); set '
                         f'num_classes={len(classes)} in every head')


def _whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_block_options(bb, depths):
    """``frozen_stages`` within the stages; DTL's M (``first_g_block``) a
    block number, and not contradicting an explicit ``g_blocks`` (which
    would silently win)."""
    stages = len(depths)
    frozen = bb.get('frozen_stages', -1)
    if not _whole_number(frozen) or not -1 <= frozen <= stages:
        raise ValueError(
            f'model.backbone.frozen_stages={frozen!r}: must be a whole number '
            f'in -1..{stages} (-1: none, k: the patch embedding and the '
            f'first k of the {stages} stages). The frozen and DTL variants '
            f'freeze the whole Swin anyway; it matters only for full '
            f'fine-tuning.')
    if bb.get('type') != 'DTLSwinTransformer':
        return
    total = sum(depths)
    m = bb.get('first_g_block')
    if m is not None and (not _whole_number(m) or not 1 <= m <= total):
        raise ValueError(
            f'model.backbone.first_g_block={m!r}: must be a whole block '
            f'number in 1..{total} (the Swin has {total} blocks)')
    g_blocks = bb.get('g_blocks')
    if m is not None and g_blocks and m != min(g_blocks):
        raise ValueError(
            f'model.backbone.first_g_block={m} and g_blocks='
            f'{list(g_blocks)} conflict: explicit g_blocks put the first '
            f'add-back block (M) at {min(g_blocks)}. Set one of them.')


def check_activation_checkpointing(cfg):
    """mmengine's ``activation_checkpointing`` key wraps parts with the
    reentrant checkpoint, under which a part whose inputs come from the
    frozen trunk gets no gradients (it trains nothing, silently) or the
    first backward fails: refused, naming our key. An RoI head is
    checkpointed by its type, not by the key."""
    from ..models.recompute import CONFIG_KEY, ROI_HEAD_TYPES
    if cfg.get('activation_checkpointing'):
        raise ValueError(
            f'activation_checkpointing={list(cfg.activation_checkpointing)}'
            f': mmengine applies this key with the reentrant checkpoint, '
            f'which gives a part behind the frozen trunk no gradients. Use '
            f'{CONFIG_KEY}={list(cfg.activation_checkpointing)} instead '
            f'(same part names, non-reentrant; DTLRunner applies it).')
    head = cfg.model.get('roi_head')
    if 'roi_head' in (cfg.get(CONFIG_KEY) or []) and isinstance(
            head, dict) and head.get('type') not in ROI_HEAD_TYPES.values():
        ours = ROI_HEAD_TYPES.get(head.get('type'))
        raise ValueError(
            f'{CONFIG_KEY} lists roi_head: an RoI head is checkpointed by '
            f'its type; set model.roi_head.type=' +
            (repr(ours
                  ) if ours else f'one of {sorted(ROI_HEAD_TYPES.values())}') +
            f' (or leave roi_head out of {CONFIG_KEY})')


def check_model_config(cfg):
    """The backbone's outputs must be what the neck / heads expect, and the
    heads' num_classes the data set's classes; a mismatch otherwise
    surfaces as a shape error deep in the first forward, or not at all.
    """
    check_num_classes(cfg)
    check_activation_checkpointing(cfg)
    model = cfg.model
    bb = model.get('backbone') or {}
    if bb.get('type') not in SWIN_TYPES:
        return
    defaults = swin_defaults()
    depths = bb.get('depths', defaults['depths'])
    check_block_options(bb, depths)
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
                chans[i] if i < len(chans) else None for i in index
            ]
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


def check_pretrained_trunk(cfg):
    """Training a frozen (or fine-tuned) trunk that loads no pretrained
    weights wastes the run: an error unless the config opts in with
    ``allow_random_trunk = True`` (the demo configs do: no pretrained tiny
    trunk exists). ``allow_random_swin``, its name before ViT trunks came,
    is read too. Resuming or ``load_from`` bring the weights themselves.
    Every dtl_mm backbone (a ``PretrainedTrunk``, or ``type='DTL'``) is
    checked."""
    from mmengine.registry import MODELS

    from ..models.dtl_wrapper import adapter_for
    from ..models.trunk_wrapper import PretrainedTrunk
    bb = cfg.model.get('backbone') or {}
    kind = bb.get('type')
    if kind == 'DTL' and isinstance(bb.get('trunk'), dict):
        bb = bb['trunk']
        kind = adapter_for(str(bb.get('type')), cfg.get('default_scope'))
    cls = MODELS.get(kind) if isinstance(kind, str) else None
    if not (isinstance(cls, type) and issubclass(cls, PretrainedTrunk)) \
            or cfg.get('allow_random_trunk') \
            or cfg.get('allow_random_swin') \
            or cfg.get('resume') or cfg.get('load_from'):
        return
    name = cls.TRUNK_NAME
    full = 'FAMILY' in cls.__dict__  # a family's own wrapper, not frozen
    init = bb.get('init_cfg')
    if init is None or not init.get('checkpoint'):
        raise ValueError(
            f'model.backbone.init_cfg={init!r}: no pretrained {name}, so '
            f'training would start from a random ' +
            ('frozen ' if not full or bb.get('frozen') else '') +
            f'{name}. Set model.backbone.init_cfg.checkpoint to the '
            f'pretrained file or URL; to train on a random {name} '
            f'deliberately, add allow_random_trunk=True to the config (or '
            f'--cfg-options allow_random_trunk=True).')
