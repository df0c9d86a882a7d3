"""Pretrained trunk weights into a library's backbone: one loader for every
trunk family, fed by the family's key schema.

A file may hold the trunk under any prefix (``[module.][backbone.]``, a
dtl_mm wrapper's attribute), in any layout the schema knows (a released
classifier, OpenMMLab's converted keys, a whole detector / segmentor /
dtl_mm model, a DDP-saved model). The loader:

1. reads the file safely (``safe_load``) and takes its state dict;
2. follows a dtl_mm lean checkpoint to the file its trunk came from, and
   checks that file against the recorded fingerprint;
3. finds the one trunk in the file (none or several is an error);
4. puts it into the model's keys (the schema's renames and refusals);
5. refuses a deeper trunk (more blocks in a stage, more stages): loading
   its first blocks would silently give another network; and a block
   weight the model has no place for (another block architecture);
6. lets the schema fit what may be fitted (a ViT's position embedding);
7. fills every weight or raises: a wrong shape, or a weight the file
   lacks, except those the schema lets keep their initialisation.

Everything else in the file (heads, necks, side networks, optimizer
state) is ignored and counted.
"""
import re
from collections import Counter, OrderedDict
from typing import Callable, Dict, Iterable, Optional, Pattern, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from .errors import CheckpointLayoutError
from .lean_checkpoint import (lean_trunk_missing, lean_trunk_record,
                              pretrained_file_exists, trunk_fingerprint)
from .safe_load import load_checkpoint_file

Depths = Tuple[int, ...]
# The output norms of a hierarchical trunk (norm0..norm3) belong to the
# dense-prediction backbone, not to the ImageNet classifier: a
# classification checkpoint lacks them (but perhaps the last). Left at
# LayerNorm's deterministic init (weight 1, bias 0) they are well defined.
OUTPUT_NORM = re.compile(r'^norm\d+\.')
OUTPUT_NORM_NOTE = ('output-norm tensors keep LayerNorm init (not part of a '
                    'classification checkpoint)')


class TrunkKeySchema:
    """How one trunk family's weights are named in files, and how they map
    onto its library's backbone. A family's adapter defines one instance.

    Attributes:
        name: how messages name the trunk ('Swin').
        key: a full key of the trunk in any layout: groups (prefix, key).
        expected: the key patterns, for the error that finds none.
        shape_hint: what a wrong shape probably means.
        may_default: model keys a file may lack (they keep their
            initialisation), and ``default_note``, what the log says of
            them.
    """
    name = 'trunk'
    key: Pattern = re.compile(r'(?!)')
    expected = ''
    shape_hint = ''
    may_default: Pattern = re.compile(r'(?!)')
    default_note = ''

    def is_block(self, key: str) -> bool:
        """A key (under the prefix) of a trunk block, in any layout."""
        raise NotImplementedError

    def to_model_keys(self, trunk: nn.Module, prefix: str, sd: Dict,
                      filename: str) -> Tuple[Dict, str, int]:
        """The file's trunk ``sd`` (keys under ``prefix``) in the model's
        keys, its layout's name, and how many of its keys were dropped
        (pre-training only); raises for weights the model cannot take."""
        return sd, 'openmmlab', 0

    # a model key inside a block: groups (stage, block), or (block) of a
    # one-stage trunk
    block: Pattern = re.compile(r'(?!)')

    def block_of(self, key: str) -> Optional[Tuple[int, int]]:
        """(stage, block) of a model key inside a block, else None."""
        found = self.block.match(key)
        if not found:
            return None
        numbers = tuple(map(int, found.groups()))
        return numbers if len(numbers) == 2 else (0, numbers[0])

    def name_blocks(self, stage: int, first: int, last: int) -> str:
        """Blocks ``first..last`` of ``stage``, in the model's keys."""
        raise NotImplementedError

    def name_depths(self, depths: Depths) -> str:
        """An architecture's depths, in its config's terms."""
        return f'depths {depths}'

    # block keys of files that no model of the family holds (buffers the
    # release computes, e.g. Swin's attention masks): ignored, not refused
    not_in_model: Pattern = re.compile(r'(?!)')

    def no_place(self, key: str) -> str:
        """What a block weight the model has no place for means."""
        return 'another block architecture'

    def fit(self, trunk: nn.Module, sd: Dict, filename: str,
            layout: str) -> None:
        """After the block checks: fits what may be fitted to the model (a
        position embedding), in ``sd``."""

    def holds_block(self, full_key: str) -> bool:
        found = self.key.match(full_key)
        return bool(found) and self.is_block(found.group(2))


def load_trunk_weights(trunk: nn.Module,
                       filename: str,
                       schema: TrunkKeySchema,
                       depths: Depths,
                       logger='current',
                       keys: Optional[Iterable[str]] = None) -> Dict:
    """Fill every weight of the library backbone ``trunk`` (of ``keys``,
    default: all of its state; ``depths``: its blocks per stage) from
    ``filename`` or raise :class:`CheckpointLayoutError` naming the file
    and the tensors.

    Returns a report dict: layout, filled, defaulted, ignored (count of
    other keys in the file), sha256 of the result.
    """
    state = extract_state_dict(load_checkpoint_file(filename), filename)
    record = lean_trunk_record(state, schema.holds_block)
    if record is not None:
        return _load_lean_record(trunk, filename, schema, depths, record,
                                 logger, keys)
    prefix, found = find_trunk(state, filename, schema)
    sd, layout, dropped = schema.to_model_keys(trunk, prefix, found, filename)
    check_depths(
        file_depths(sd, schema.block_of), depths, filename, layout, schema)
    check_block_weights(trunk, sd, filename, layout, schema)
    schema.fit(trunk, sd, filename, layout)
    return fill_trunk(trunk, sd, filename, layout,
                      len(state) - len(found) + dropped, logger, keys, schema)


def extract_state_dict(ckpt, filename: str) -> Dict:
    if not isinstance(ckpt, dict):
        raise CheckpointLayoutError(
            f'{filename}: expected a dict checkpoint, got {type(ckpt)}')
    for key in ('state_dict', 'model'):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    return ckpt


def find_trunk(state_dict: Dict, filename: str,
               schema: TrunkKeySchema) -> Tuple[str, Dict]:
    """(prefix, the trunk's tensors by their keys under it) of the one
    trunk in a file: keys match ``schema.key`` and some key is a block's;
    none or several is an error naming the file."""
    groups = {}
    for key, value in state_dict.items():
        found = schema.key.match(key)
        if found and isinstance(value, torch.Tensor):
            groups.setdefault(found.group(1), {})[found.group(2)] = value
    trunks = {
        p: sd
        for p, sd in groups.items() if any(map(schema.is_block, sd))
    }
    if len(trunks) > 1:
        raise CheckpointLayoutError(
            f'{filename}: {schema.name} weights under several prefixes '
            f'({", ".join(repr(p) for p in trunks)}); cannot tell which is '
            f'the backbone')
    if not trunks:
        sample = ', '.join(list(state_dict)[:5])
        raise CheckpointLayoutError(
            f'{filename}: not a {schema.name} checkpoint: expected keys '
            f'{schema.expected}, found e.g. {sample}')
    return trunks.popitem()


def block_range(first: int, last: int) -> str:
    return str(first) if first == last else f'{first}..{last}'


def file_depths(keys: Iterable[str],
                block_of: Callable[[str], Optional[Tuple[int, int]]]):
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
                 schema: TrunkKeySchema):
    """Refuses a file whose trunk has blocks the model lacks (more blocks
    in a stage, more stages), naming them and both architectures' depths:
    its first blocks would load into every model weight, the rest would be
    dropped, and the model would silently be another, shallower network."""
    extra = []
    for stage, n in enumerate(in_file):
        have = in_model[stage] if stage < len(in_model) else 0
        if n > have:
            extra.append(schema.name_blocks(stage, have, n - 1))
    if extra:
        raise CheckpointLayoutError(
            f'{filename} ({layout} layout): the file\'s {schema.name} is '
            f'deeper than this config\'s: it has blocks the model lacks '
            f'({", ".join(extra)}); file {schema.name_depths(in_file)}, '
            f'config {schema.name_depths(in_model)}. Set the config\'s '
            f'depths to the file\'s, or load a file of this architecture.')


def check_block_weights(trunk: nn.Module, sd: Dict, filename: str, layout: str,
                        schema: TrunkKeySchema):
    """A block weight of the file the model has no place for means another
    block architecture (layer scale in the file, not in the config):
    dropping it would load a different function than the file's."""
    model_keys = set(trunk.state_dict())
    extra = sorted(
        k for k in sd if schema.block_of(k) and k not in model_keys
        and not schema.not_in_model.search(k))
    if extra:
        raise CheckpointLayoutError(
            f'{filename} ({layout} layout): {len(extra)} block weight(s) of '
            f'the file have no place in this {schema.name}, e.g. '
            f'`{extra[0]}`: the file has {schema.no_place(extra[0])}; the '
            f'config builds a different block')


def fill_trunk(trunk: nn.Module, sd: Dict, filename: str, layout: str,
               ignored: int, logger, keys: Optional[Iterable[str]],
               schema: TrunkKeySchema) -> Dict:
    """Loads ``sd`` (the file's trunk in the model's keys) into every
    parameter of ``trunk`` (of ``keys``), or raises naming the tensors."""
    name = schema.name
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
            f'shape for this config ({schema.shape_hint}): ' +
            '; '.join(mismatched[:5]))
    missing = sorted(params - set(sd))
    defaulted = [k for k in missing if schema.may_default.match(k)]
    missing = [k for k in missing if not schema.may_default.match(k)]
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
        (f'; {len(defaulted)} {schema.default_note}' if defaulted else '') +
        (f'; ignored {ignored} other keys of the file' if ignored else ''),
        logger=logger)
    return report


def _load_lean_record(trunk: nn.Module, filename: str, schema, depths,
                      record: dict, logger, keys) -> Dict:
    """A lean checkpoint as pretrained: its trunk is the file it names,
    loaded and checked against the recorded fingerprint."""
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
    report = load_trunk_weights(trunk, source, schema, depths, logger, keys)
    if report['sha256'] != record.get('sha256'):
        raise CheckpointLayoutError(
            f'{filename}: a lean checkpoint trained on a frozen backbone '
            f'with sha256 {str(record.get("sha256"))[:16]}..., but {source} '
            f'now holds different weights (sha256 {report["sha256"][:16]}...)')
    return report


def describe_state_dict(keys: Iterable[str]) -> str:
    """'backbone.* (40), neck.* (12), ...': what a checkpoint holds."""
    tops = Counter(k.split('.', 1)[0] for k in keys)
    return ', '.join(f'{t}.* ({n})' for t, n in tops.most_common())
