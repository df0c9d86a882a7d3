"""The model a checkpoint was trained as, against the config it is loaded
into.

mmengine keeps the training config's text in a checkpoint
(``meta['cfg']``). Two backbone layouts with the same weight shapes (a side
network that adds back from block 8 instead of 7, another ``beta``) load
into each other without a single mismatched key and compute something
else; comparing the backbone settings of the two configs catches that.

The text is read as data (dicts, lists, numbers, strings), never run.
"""
import ast
import inspect
from typing import Dict, List, Optional

from mmengine.logging import print_log

from .safe_load import CheckpointError, load_checkpoint_file

# backbone settings that do not change what a trained model computes in
# evaluation (where its weights come from, dropout, checkpointing, freezing)
NOT_MODEL_DEFINING = ('init_cfg', 'pretrained', 'lean_checkpoint',
                      'convert_weights', 'drop_rate', 'attn_drop_rate',
                      'drop_path_rate', 'with_cp', 'recompute_trunk',
                      'frozen_stages')


class TrainedConfigMismatch(CheckpointError):
    """The checkpoint was trained with another model layout."""


def _literal(node):
    """A config value from its syntax tree: constants, lists, tuples,
    ``{...}`` and ``dict(key=...)``; anything else is refused."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {
            _literal(k): _literal(v)
            for k, v in zip(node.keys, node.values)
        }
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id == 'dict' and not node.args and \
            all(kw.arg for kw in node.keywords):
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand)
    raise ValueError(f'not a plain value: {ast.dump(node)[:80]}')


def trained_model_config(checkpoint: dict) -> Optional[dict]:
    """``model`` of the config text in ``meta['cfg']``, or None (no config
    kept, or one that is not plain data)."""
    text = (checkpoint.get('meta') or {}).get('cfg') \
        if isinstance(checkpoint, dict) else None
    if not isinstance(text, str):
        return None
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name) and \
                node.targets[0].id == 'model':
            try:
                value = _literal(node.value)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _plain(value):
    """Tuples as lists, ConfigDicts as dicts: how the text stores them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _resolved(backbone: dict, scope: str) -> Dict:
    """A backbone config with what it leaves out filled in: the class's
    constructor defaults, mmdet's SwinTransformer's for the arguments it
    passes on, and for a DTL backbone its variant's option defaults."""
    import dataclasses

    from mmdet.models.backbones import SwinTransformer
    from mmengine.registry import MODELS

    from ..models.csn_layout import DTLOptions
    out = {}
    btype = str(backbone.get('type'))
    cls = MODELS.get(f'{scope}.{btype}') or MODELS.get(btype)
    for c in [SwinTransformer] + ([cls] if cls is not None else []):
        for name, p in inspect.signature(c.__init__).parameters.items():
            if p.default is not inspect.Parameter.empty:
                out[name] = _plain(p.default)
    out.update(backbone)
    from ..models.dtl_backbone import DTLBackbone
    if isinstance(cls, type) and issubclass(cls, DTLBackbone):
        fields = {f.name for f in dataclasses.fields(DTLOptions)}
        try:
            options = DTLOptions.for_variant(
                out.get('variant'), cls.VARIANT_DEFAULTS,
                **{k: v
                   for k, v in out.items() if k in fields - {'variant'}})
            out.update(_plain(dataclasses.asdict(options)))
        except (TypeError, ValueError):
            pass  # the model's own check names a bad option
    return out


def backbone_differences(trained: dict, model_cfg: dict,
                         scope: str) -> List[str]:
    """'model.backbone.first_g_block: trained with 7, configured 8' for
    every model-defining backbone setting that differs."""
    old = _plain(trained.get('backbone') or {})
    new = _plain(dict(model_cfg.get('backbone') or {}))
    if old.get('type') != new.get('type'):
        return [
            f'model.backbone.type: trained with {old.get("type")!r}, '
            f'configured {new.get("type")!r}'
        ]
    old, new = _resolved(old, scope), _resolved(new, scope)
    diff = []
    for key in sorted(set(old) | set(new)):
        if key in NOT_MODEL_DEFINING:
            continue
        was, now = old.get(key, '<unset>'), new.get(key, '<unset>')
        if was != now:
            diff.append(f'model.backbone.{key}: trained with {was!r}, '
                        f'configured {now!r}')
    return diff


def check_trained_config(checkpoint,
                         cfg,
                         name: str = None,
                         strict: bool = True) -> List[str]:
    """Compares the backbone of the config ``checkpoint`` (a path or a
    loaded dict) was trained with against ``cfg``'s. ``strict``: raise
    :class:`TrainedConfigMismatch` naming every difference (evaluation,
    inference, resume, conversion); else log a warning (``load_from`` for a
    new training, where another layout can be intended). Returns the
    differences; a checkpoint without a readable config passes."""
    if isinstance(checkpoint, str):
        name = name or checkpoint
        checkpoint = load_checkpoint_file(checkpoint)
    trained = trained_model_config(checkpoint)
    if trained is None:
        return []
    diff = backbone_differences(trained, cfg.model,
                                cfg.get('default_scope', 'mmdet'))
    if not diff:
        return []
    what = (f'{name or "the checkpoint"} was trained with another backbone '
            f'layout than this config sets: {"; ".join(diff)}')
    if strict:
        raise TrainedConfigMismatch(
            f'{what}. Its weights fit, but the model would compute '
            f'something else: use the config it was trained with (kept in '
            f'the checkpoint, meta["cfg"]) or set these fields as they '
            f'were.')
    print_log(
        f'{what}; training starts from its weights with this config\'s '
        f'layout',
        logger='current',
        level=30)
    return diff
