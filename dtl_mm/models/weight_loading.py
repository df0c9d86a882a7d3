"""Pretrained Swin weights into mmdet's Swin, wherever they sit in a file.

A Swin is found under any of the prefixes ``[module.][backbone.][swin.]``:
an ImageNet classifier (Microsoft's release, ``model`` -> ``layers.*``,
converted once with mmdet's ``swin_converter``; or OpenMMLab's converted
``[backbone.]stages.*``, loaded as they are, since the converter would
silently mangle them), an mmdet / mmseg detector or segmentor, a whole
dtl_mm model (``backbone.swin.*`` beside ``backbone.csn.*``, neck and
heads), a DDP-saved model (``module.``). Everything else in the file is
ignored and counted. A dtl_mm lean checkpoint holds no Swin: it names the
file its trunk came from, which is loaded instead and checked against the
recorded fingerprint.

The load refuses to leave a frozen weight at its random initialisation,
and refuses a file whose trunk is deeper than the model's (more blocks in
a stage, more stages): loading its first blocks would give another
network.
"""
import hashlib
import json
import os.path as osp
import re
from collections import Counter, OrderedDict
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
from mmdet.models.backbones.swin import swin_converter
from mmengine.logging import print_log
from torch import nn

from ..checkpoint.safe_load import load_checkpoint_file

# Output norms (norm0..norm3) belong to the dense-prediction wrapper, not to
# the ImageNet classifier: a classification checkpoint never has them. Left
# at LayerNorm's deterministic init (weight 1, bias 0) they are well defined.
OUTPUT_NORM = re.compile(r'^norm\d+\.')
# (prefix, Swin key): stages/layers, patch embedding, output norms
_SWIN_KEY = re.compile(r'^((?:module\.)?(?:backbone\.)?(?:swin\.)?)'
                       r'((?:stages|layers)\.\d+\..*|patch_embed\..*|'
                       r'absolute_pos_embed|norm\d+\..*)$')
# a block of a Swin in mmdet's keys: (stage, block)
_SWIN_BLOCK = re.compile(r'^stages\.(\d+)\.blocks\.(\d+)\.')
# where a dtl_mm backbone keeps its record of the frozen trunk (torch's
# extra-state key): JSON in a uint8 tensor, so that everything that handles
# state dicts as tensors (mmengine's broadcast, weights_to_cpu, equality
# checks) handles it too
EXTRA_STATE = '_extra_state'


def encode_trunk_record(record: Optional[dict]) -> torch.Tensor:
    """{'source': file, 'sha256': hex} or None -> uint8 tensor."""
    return torch.tensor(list(json.dumps(record).encode()), dtype=torch.uint8)


def decode_trunk_record(value) -> Optional[dict]:
    if isinstance(value, torch.Tensor) and value.dtype == torch.uint8:
        try:
            record = json.loads(bytes(value.tolist()).decode())
        except ValueError:
            return None
        return record if isinstance(record, dict) else None
    return None


class CheckpointLayoutError(ValueError):
    """The checkpoint is not a Swin of the configured architecture."""


def extract_state_dict(ckpt, filename: str) -> Dict[str, torch.Tensor]:
    if not isinstance(ckpt, dict):
        raise CheckpointLayoutError(
            f'{filename}: expected a dict checkpoint, got {type(ckpt)}')
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    return ckpt


def find_trunk(state_dict: Dict, filename: str, key_re, is_trunk, name: str,
               expected: str) -> Tuple[str, Dict]:
    """(prefix, the trunk's tensors by their keys under it) of the one
    trunk in a file: keys match ``key_re`` (groups: prefix, key) and some
    key satisfies ``is_trunk``; none or several is an error naming the file
    (``expected``: the key patterns to name)."""
    groups = {}
    for key, value in state_dict.items():
        found = key_re.match(key)
        if found and isinstance(value, torch.Tensor):
            groups.setdefault(found.group(1), {})[found.group(2)] = value
    trunks = {p: sd for p, sd in groups.items() if any(map(is_trunk, sd))}
    if len(trunks) > 1:
        raise CheckpointLayoutError(
            f'{filename}: {name} weights under several prefixes '
            f'({", ".join(repr(p) for p in trunks)}); cannot tell which is '
            f'the backbone')
    if not trunks:
        sample = ', '.join(list(state_dict)[:5])
        raise CheckpointLayoutError(
            f'{filename}: not a {name} checkpoint: expected keys '
            f'{expected}, found e.g. {sample}')
    return trunks.popitem()


def find_swin(state_dict: Dict, filename: str):
    """Returns (Swin state dict in mmdet keys, layout, #ignored keys)."""
    prefix, sd = find_trunk(
        state_dict, filename, _SWIN_KEY, lambda k: k.startswith(
            ('stages.', 'layers.')), 'Swin',
        "'[module.][backbone.][swin.]stages.*' (OpenMMLab, dtl_mm) or "
        "'layers.*' (Microsoft release)")
    ignored = len(state_dict) - len(sd)
    if any(k.startswith('layers.') for k in sd):
        converted = swin_converter(sd)  # adds 'backbone.'
        return {k[len('backbone.'):]: v for k, v in converted.items()}, \
            'microsoft', ignored
    return sd, 'openmmlab' if not prefix.endswith('swin.') else 'dtl_mm', \
        ignored


def lean_trunk_record(
        state_dict: Dict,
        is_trunk_key: Callable[[str], bool] = None) -> Optional[dict]:
    """The frozen-trunk record of a dtl_mm lean checkpoint (no trunk weights,
    ``source`` and ``sha256`` of the file they came from), else None.
    ``is_trunk_key``: does a key hold a trunk block (default: a Swin's)."""
    is_trunk_key = is_trunk_key or _is_swin_block_key
    records = [
        decode_trunk_record(v) for k, v in state_dict.items()
        if k.endswith(EXTRA_STATE)
    ]
    records = [r for r in records if r]
    has_trunk = any(is_trunk_key(k) for k in state_dict)
    return records[0] if records and not has_trunk else None


def _is_swin_block_key(key: str) -> bool:
    return bool(_SWIN_KEY.match(key)) and ('stages.' in key
                                           or 'layers.' in key)


def load_swin_weights(swin: nn.Module,
                      filename: str,
                      logger='current',
                      keys: Optional[Iterable[str]] = None) -> Dict:
    """Fill every Swin parameter (of ``keys``, default: all of ``swin``'s
    state) from ``filename`` or raise.

    Returns a report dict: layout, filled, defaulted (output norms),
    ignored (count of other keys in the file), sha256 of the result.
    """
    ckpt = load_checkpoint_file(filename)
    state = extract_state_dict(ckpt, filename)
    record = lean_trunk_record(state)
    if record is not None:
        return load_via_lean_record(load_swin_weights, swin, filename, record,
                                    logger, keys)
    sd, layout, ignored = find_swin(state, filename)
    check_depths(
        file_depths(sd, _swin_block),
        tuple(len(stage.blocks) for stage in swin.stages), filename, layout,
        'Swin', _swin_blocks, lambda depths: f'depths {depths}')
    return fill_trunk(
        swin,
        sd,
        filename,
        layout,
        ignored,
        logger,
        keys,
        name='Swin',
        shape_hint='another Swin size or window size?',
        may_default=OUTPUT_NORM.match,
        default_note='output-norm tensors keep LayerNorm init (not part of '
        'a classification checkpoint)')


def _swin_block(key: str):
    found = _SWIN_BLOCK.match(key)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _swin_blocks(stage: int, first: int, last: int) -> str:
    return f'stages.{stage}.blocks.{block_range(first, last)}'


def block_range(first: int, last: int) -> str:
    return str(first) if first == last else f'{first}..{last}'


# key -> (stage, block) of a trunk block, None for other keys
BlockOf = Callable[[str], Optional[Tuple[int, int]]]
Depths = Tuple[int, ...]


def file_depths(keys: Iterable[str], block_of: BlockOf) -> Depths:
    """Blocks per stage of a file's trunk: one more than the highest
    block index of each stage; a stage without blocks counts 0."""
    top = {}
    for key in keys:
        found = block_of(key)
        if found:
            stage, block = found
            top[stage] = max(top.get(stage, -1), block)
    return tuple(top.get(s, -1) + 1 for s in range(max(top, default=-1) + 1))


def check_depths(in_file: Depths, in_model: Depths, filename: str, layout: str,
                 name: str, blocks: Callable[..., str],
                 depths: Callable[[Depths], str]):
    """Refuses a file whose trunk has blocks the model lacks (more blocks
    in a stage, more stages; depths per stage ``in_file`` vs ``in_model``),
    naming them (``blocks(stage, first, last)``) and both architectures'
    depths (``depths(depths)``): its first blocks
    would load into every model weight, the rest would be dropped, and
    the model would silently be another, shallower network."""
    extra = []
    for stage, n in enumerate(in_file):
        have = in_model[stage] if stage < len(in_model) else 0
        if n > have:
            extra.append(blocks(stage, have, n - 1))
    if extra:
        raise CheckpointLayoutError(
            f'{filename} ({layout} layout): the file\'s {name} is deeper '
            f'than this config\'s: it has blocks the model lacks '
            f'({", ".join(extra)}); file {depths(in_file)}, config '
            f'{depths(in_model)}. Set the config\'s depths to the '
            f'file\'s, or load a file of this architecture.')


def fill_trunk(trunk: nn.Module,
               sd: Dict,
               filename: str,
               layout: str,
               ignored: int,
               logger,
               keys: Optional[Iterable[str]],
               name: str,
               shape_hint: str,
               may_default: Callable[[str], object] = lambda key: False,
               default_note: str = '') -> Dict:
    """Loads ``sd`` (a file's trunk, in the trunk's own keys) into every
    parameter of ``trunk`` (of ``keys``, default: all of its state), or
    raises naming the tensors: a wrong shape, or a parameter the file lacks
    (except those ``may_default`` allows to keep their initialisation).

    Returns a report dict: layout, filled, defaulted, ignored (count of
    other keys in the file), sha256 of the result.
    """
    target = trunk.state_dict()
    if keys is not None:
        target = OrderedDict((k, target[k]) for k in keys)
    params = {n for n, _ in trunk.named_parameters()} & set(target)
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}'
        for k, v in sd.items() if k in target and v.shape != target[k].shape
    ]
    if mismatched:
        raise CheckpointLayoutError(
            f'{filename}: {len(mismatched)} {name} weight(s) have the wrong '
            f'shape for this config ({shape_hint}): ' +
            '; '.join(mismatched[:5]))
    missing = sorted(params - set(sd))
    defaulted = [k for k in missing if may_default(k)]
    missing = [k for k in missing if not may_default(k)]
    if missing:
        raise CheckpointLayoutError(
            f'{filename} ({layout} layout): {len(missing)} frozen {name} '
            f'weight(s) are missing and would stay random, e.g. '
            f'{missing[:5]}')
    filled = OrderedDict((k, v) for k, v in sd.items() if k in target)
    trunk.load_state_dict(filled, strict=False)
    ignored += len(set(sd) - set(target))
    report = dict(
        layout=layout,
        filled=len(set(filled) & params),
        defaulted=defaulted,
        ignored=ignored,
        # target's tensors share storage with the loaded weights
        sha256=trunk_fingerprint(target))
    print_log(
        f'Loaded {name} weights from {filename} ({layout} layout): filled '
        f'{report["filled"]}/{len(params)} backbone parameter tensors' +
        (f'; {len(defaulted)} {default_note}' if defaulted else '') +
        (f'; ignored {ignored} other keys of the file' if ignored else ''),
        logger=logger)
    return report


def load_via_lean_record(load: Callable, trunk: nn.Module, filename: str,
                         record: dict, logger, keys):
    """A lean checkpoint as pretrained: its trunk is the file it names,
    loaded with ``load(trunk, file, logger, keys)`` and checked against the
    recorded fingerprint."""
    source = record.get('source')
    if not source or source == filename:
        raise CheckpointLayoutError(
            f'{filename}: a lean dtl_mm checkpoint: it holds no backbone '
            f'weights and names no other file to take them from')
    if not pretrained_file_exists(source):
        raise CheckpointLayoutError(f'{filename}: ' +
                                    lean_trunk_missing(record, None))
    print_log(
        f'{filename} is a lean checkpoint: taking its frozen backbone '
        f'from {source}',
        logger=logger)
    report = load(trunk, source, logger, keys)
    if report['sha256'] != record.get('sha256'):
        raise CheckpointLayoutError(
            f'{filename}: a lean checkpoint trained on a frozen backbone '
            f'with sha256 {str(record.get("sha256"))[:16]}..., but {source} '
            f'now holds different weights (sha256 {report["sha256"][:16]}...)')
    return report


def pretrained_file_exists(filename: str) -> bool:
    """A URL (downloaded or refused by the loader itself), or a file."""
    return filename.startswith(('http://', 'https://')) or \
        osp.isfile(osp.expanduser(filename))


# how to point the tools at a copy of a lean checkpoint's pretrained file
LEAN_TRUNK_REMEDIES = (
    '--backbone-from-pretrained FILE (tools/test.py, tools/infer.py) or '
    '--cfg-options model.backbone.init_cfg.checkpoint=FILE; or make a '
    'self-contained checkpoint where the file is: '
    'tools/convert_checkpoint.py CONFIG CKPT OUT --to full [--pretrained '
    'FILE]')


def lean_trunk_missing(record: dict,
                       configured: Optional[str],
                       remedies: str = LEAN_TRUNK_REMEDIES) -> str:
    """Why a lean checkpoint's frozen trunk cannot be restored, with the
    sha256 it needs and the ways to point at a copy."""
    source = record.get('source')
    where = (f'the configured pretrained file {configured} does not exist'
             if configured else 'no pretrained file is configured '
             '(model.backbone.init_cfg)')
    if source and source != configured:
        where += (f', and the file it was trained with, {source}, is ' +
                  ('there' if pretrained_file_exists(source) else 'gone too'))
    return (f'a lean checkpoint: it holds no frozen backbone weights, only '
            f'the sha256 of the backbone it was trained on, '
            f'{record.get("sha256")}, '
            f'first loaded from {source}; {where}. Point to a file with '
            f'those weights: {remedies}.')


def trunk_fingerprint(state: Dict[str, torch.Tensor]) -> str:
    """sha256 (hex) of a trunk's state dict (a Swin in mmdet keys, a ViT in
    its library's keys): names, dtypes, shapes and bytes, in sorted key
    order. Equal fingerprints mean the same frozen trunk, whichever file or
    model the tensors came from."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        digest.update(f'{key}|{t.dtype}|{tuple(t.shape)}\n'.encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def describe_state_dict(keys: Iterable[str]) -> str:
    """'backbone.* (40), neck.* (12), ...': what a checkpoint holds."""
    tops = Counter(k.split('.', 1)[0] for k in keys)
    return ', '.join(f'{t}.* ({n})' for t, n in tops.most_common())
