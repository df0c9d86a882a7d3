"""Lean checkpoints: what a checkpoint holds of a frozen pretrained trunk.

A frozen trunk that came from a file is left out of saved state dicts (a
*lean* checkpoint) and recorded instead by its file and the sha256
fingerprint of its weights (the module's extra state). Loading a lean
checkpoint takes the trunk from that file again and checks the
fingerprint; a checkpoint that lacks the trunk and cannot be completed is an
error, never a random trunk (mmengine loads with ``strict=False``, which
would otherwise only warn).

As mmpretrain's ``LoRAModel`` does, this works through the module's
state-dict hooks: nothing overrides ``_load_from_state_dict`` and the state
dict being loaded is never changed. Keys the trunk legitimately lacks are
taken off the missing keys after loading.
"""
import hashlib
import json
import os.path as osp
from typing import Callable, Dict, List, Optional

import torch
from mmengine.logging import print_log

from .errors import CheckpointLayoutError

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


def trunk_fingerprint(state: Dict[str, torch.Tensor]) -> str:
    """sha256 (hex) of a trunk's state dict (in its library's keys): names,
    dtypes, shapes and bytes, in sorted key order. Equal fingerprints mean
    the same frozen trunk, whichever file or model the tensors came from."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        digest.update(f'{key}|{t.dtype}|{tuple(t.shape)}\n'.encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def lean_trunk_record(state_dict: Dict,
                      holds_block: Callable[[str], bool]) -> Optional[dict]:
    """The frozen-trunk record of a dtl_mm lean checkpoint (no trunk weights,
    ``source`` and ``sha256`` of the file they came from), else None.
    ``holds_block``: does a key of the file hold a trunk block."""
    records = [
        decode_trunk_record(v) for k, v in state_dict.items()
        if k.endswith(EXTRA_STATE)
    ]
    records = [r for r in records if r]
    has_trunk = any(holds_block(k) for k in state_dict)
    return records[0] if records and not has_trunk else None


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


class LeanTrunkCheckpoint:
    """Mixin of :class:`PretrainedTrunk`: lean saving and complete loading.

    Uses the wrapper's ``frozen``, ``lean_checkpoint``, ``pretrained``,
    ``trunk_record``, ``trunk_keys``, ``trunk_prefix``, ``TRUNK_NAME`` and
    ``load_pretrained``.
    """

    def register_lean_checkpoint_hooks(self):
        # public names since torch 2.5; torch 2.1 has the same hooks under
        # private ones
        save_hook = getattr(self, 'register_state_dict_post_hook',
                            self._register_state_dict_hook)
        save_hook(LeanTrunkCheckpoint._leave_out_frozen_trunk)
        if hasattr(self, 'register_load_state_dict_pre_hook'):
            self.register_load_state_dict_pre_hook(
                LeanTrunkCheckpoint._check_trunk_in_checkpoint)
        else:
            self._register_load_state_dict_pre_hook(
                LeanTrunkCheckpoint._check_trunk_in_checkpoint,
                with_module=True)
        self.register_load_state_dict_post_hook(
            LeanTrunkCheckpoint._trunk_not_missing)
        # full keys of the trunk the last load found absent on purpose
        self._absent_trunk_keys: List[str] = []

    # -- the record, as the module's extra state ----------------------
    def get_extra_state(self):
        return encode_trunk_record(self.trunk_record if self.frozen else None)

    def set_extra_state(self, state):
        record = decode_trunk_record(state)
        # the same weights already loaded from a file (init_cfg, perhaps at
        # a new path after a move): keep naming that file, not the old one
        same = self.trunk_record and record and \
            self.trunk_record['sha256'] == record.get('sha256')
        if self.frozen and record and not same:
            self.trunk_record = record

    # -- saving ---------------------------------------------------------
    def _leave_out_frozen_trunk(self, destination, prefix, local_metadata):
        if not (self.frozen and self.lean_checkpoint):
            return
        if self.trunk_record is None:
            if not getattr(self, '_warned_full', False):
                self._warned_full = True
                print_log(
                    f'{type(self).__name__}: the frozen {self.TRUNK_NAME} '
                    f'did not come from a file (init_cfg=None), so '
                    f'checkpoints hold it in full (lean checkpoints need a '
                    f'trunk that can be restored from its file)',
                    logger='current',
                    level=30)
            return
        for key in self.trunk_keys:
            destination.pop(prefix + self.trunk_prefix + key, None)

    # -- loading --------------------------------------------------------
    def _check_trunk_in_checkpoint(self, state_dict, prefix, local_metadata,
                                   strict, missing_keys, unexpected_keys,
                                   error_msgs):
        """Before the modules load: a checkpoint without the trunk must name
        the file it came from, and the trunk is made to hold that file's
        weights, so that what the checkpoint lacks is already in place."""
        name = self.TRUNK_NAME
        trunk = [prefix + self.trunk_prefix + k for k in self.trunk_keys]
        missing = [k for k in trunk if k not in state_dict]
        self._absent_trunk_keys = []
        if not missing:
            return
        if len(missing) < len(trunk):
            raise CheckpointLayoutError(
                f'the checkpoint holds only part of the {name} backbone: '
                f'{len(missing)} of {len(trunk)} tensors are missing, e.g. '
                f'{missing[:3]}')
        record = decode_trunk_record(state_dict.get(prefix + EXTRA_STATE))
        if record:
            self._restore_recorded_trunk(record)
        elif self.trunk_record is None:
            raise CheckpointLayoutError(
                f'the checkpoint lacks all {len(missing)} {name} backbone '
                f'weights (e.g. {missing[0]}) and records no pretrained file '
                f'to take them from. Evaluating it would use a random '
                f'backbone. Load the frozen {name} from the pretrained file '
                f'first: tools/test.py CONFIG CKPT --backbone-from-pretrained '
                f'[{name.upper()}_CKPT] (default: '
                f'model.backbone.init_cfg.checkpoint), or use a full '
                f'checkpoint.')
        # else: trainable weights only, onto a trunk loaded from a file
        self._absent_trunk_keys = missing

    def _restore_recorded_trunk(self, record: dict):
        """The frozen trunk a lean checkpoint was trained on, from the
        configured pretrained file, checked by its fingerprint."""
        name = self.TRUNK_NAME
        want = record.get('sha256')
        if self.trunk_record is None or self.trunk_record['sha256'] != want:
            if not self.pretrained or not pretrained_file_exists(
                    self.pretrained):
                raise CheckpointLayoutError(
                    lean_trunk_missing(record, self.pretrained))
            self.load_pretrained()
        have = self.trunk_record['sha256']
        if have != want:
            raise CheckpointLayoutError(
                f'a lean checkpoint trained on the frozen {name} from '
                f'{record.get("source")} (sha256 {str(want)[:16]}...), but '
                f'the configured pretrained file {self.trunk_record["source"]}'
                f' holds different weights (sha256 {have[:16]}...). '
                f'Evaluating would use the wrong backbone; point '
                f'model.backbone.init_cfg.checkpoint at the file the '
                f'checkpoint was trained with.')

    def _trunk_not_missing(self, incompatible_keys):
        absent = set(self._absent_trunk_keys)
        incompatible_keys.missing_keys[:] = [
            k for k in incompatible_keys.missing_keys if k not in absent
        ]
