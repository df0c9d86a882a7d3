"""A pretrained backbone trunk, optionally frozen: what every dtl_mm backbone
(Swin, plain ViT, ...) shares, and the interface a trunk family implements.

Like mmpretrain's ``LoRAModel``, a wrapper builds the wrapped backbone and
freezes it in ``__init__``; mmengine wraps the model for DDP before
``init_weights``/``train()`` run, so freezing any later would change the set
of parameters DDP expects.

The trunk lives in one attribute (``TRUNK``: ``swin`` or ``vit``), so its
state-dict keys are ``<TRUNK>.<the library's own key>``. What a checkpoint
holds of it is :class:`LeanTrunkCheckpoint`'s business.

A frozen trunk keeps its stochastic depth (drop path) active in training,
as the official DTL code does: freezing stops its weights from changing,
not its regularisation of what flows through it, and the side network is
trained on the trunk as it behaves in training.
"""
import importlib
import re
from contextlib import nullcontext
from typing import Dict, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule

from ..checkpoint.lean_checkpoint import LeanTrunkCheckpoint
from ..checkpoint.trunk_weights import TrunkKeySchema, load_trunk_weights
from .recompute import check_cp_policy


def library_backbone(module: str, name: str, family: str):
    """A library's backbone class, imported when the first backbone of
    ``family`` is built (so that Swin detection needs no mmseg or
    mmpretrain), or an error saying what to install."""
    try:
        return getattr(importlib.import_module(module), name)
    except Exception as e:  # also torchvision's failure to load its ops
        raise ImportError(
            f'the {family} backbones of dtl_mm build {module}.{name}, which '
            f'does not import here ({type(e).__name__}: {e}); install the '
            f'library (tools/install.sh installs mmsegmentation and '
            f'mmpretrain 1.2.0 with a torchvision that matches torch)') from e


class PretrainedTrunk(LeanTrunkCheckpoint, BaseModule):
    """The frozen-or-not wrapped trunk, its pretrained file and checkpoints.

    Subclasses implement :meth:`build_trunk` (from the library backbone's
    own arguments) and name their weights in files (:attr:`KEYS`); the
    trunk is then ``self.<TRUNK>``.

    Args:
        frozen (bool): freeze every trunk parameter and run the trunk
            without autograd.
        lean_checkpoint (bool): for a frozen trunk that came from a file,
            leave its weights out of saved state dicts and record the file
            and a sha256 fingerprint instead; loading such a checkpoint
            takes the trunk from that file again (the config's
            ``init_cfg.checkpoint``) and checks the fingerprint. A trunk that
            did not come from a file is always saved in full.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            (a path, ``~`` path or http(s) URL); a weight left unfilled is an
            error.
        with_cp (bool | str): activation checkpointing of what autograd
            goes through (``recompute.CP_POLICIES``): False, True
            (recompute each region in backward) or 'selective' (keep the
            wide matrix products' outputs). Subclasses run their regions
            through ``recompute.recompute`` under :attr:`cp_policy`.
        **trunk_args: the wrapped library backbone's arguments.
    """
    TRUNK = 'trunk'  # the attribute holding the wrapped backbone
    TRUNK_NAME = 'trunk'  # how messages call it ('Swin', 'ViT')
    # trunks of one family can share blocks ('Swin', 'mmpretrain ViT')
    FAMILY = 'trunk'
    # the trunk keys each task keeps its own when tasks share the trunk (the
    # output norms, which act on outputs only)
    OWN_KEYS = re.compile(r'(?!)')
    # where the family's weights sit in files (checkpoint/trunk_weights.py)
    KEYS: TrunkKeySchema

    # -- the trunk interface ------------------------------------------------
    # A family's subclass sets, in __init__, the trunk's stages as the side
    # network sees them and the blocks whose outputs the backbone returns,
    # and implements the five methods below; the walker
    # (``frozen_trunk.py``), the DTL backbones, multi-task sharing and the
    # generic ``forward`` use nothing else. Blocks are numbered 1..N over
    # all stages; tensors between blocks are tokens (B, E + H*W, C), E =
    # ``num_extra_tokens`` (a class token) and (H, W) the grid.
    depths: Tuple[int, ...] = ()  # blocks per stage
    channels: Tuple[int, ...] = ()  # width per stage
    out_blocks: Tuple[int, ...] = ()  # blocks whose outputs are returned
    num_extra_tokens = 0

    def embed(self, x) -> tuple:
        """The image -> (tokens before block 1, (H, W))."""
        raise NotImplementedError

    def run_block(self, block: int, x, hw_shape):
        """Block ``block`` (1..N) on tokens, a checkpointed region under
        :attr:`cp_policy` when autograd records it."""
        raise NotImplementedError

    def downsample(self, stage: int, x, hw_shape) -> tuple:
        """Tokens after the last block of ``stage`` (from 0) -> (the first
        block's input of stage + 1, its (H, W))."""
        raise NotImplementedError

    def block_output(self, block: int, x, hw_shape):
        """The output map (B, C, H, W) of block ``block`` (in
        :attr:`out_blocks`), from its output tokens."""
        raise NotImplementedError

    def architecture(self) -> Dict:
        """What makes two trunks of the family compute the same function
        from the same weights (weight shapes are compared by the
        fingerprint): tasks share a trunk only when this is equal."""
        raise NotImplementedError

    def share_trunk_of(self, other: 'PretrainedTrunk'):
        """Points this trunk's frozen modules (all but :attr:`OWN_KEYS`) at
        ``other``'s: tasks then hold one copy of the trunk."""
        raise NotImplementedError

    def frozen_merges(self) -> tuple:
        """The trunk's own downsampling modules, one per stage (None where
        there is none), for the side network's 'frozen_patch_merging'
        bridge; empty where the trunk has none to lend."""
        return ()

    @property
    def num_blocks(self) -> int:
        return sum(self.depths)

    @property
    def stage_ends(self) -> Tuple[int, ...]:
        """The last block of each stage."""
        ends, total = [], 0
        for depth in self.depths:
            total += depth
            ends.append(total)
        return tuple(ends)

    def stage_outputs(self, out_indices) -> Tuple[int, ...]:
        """``out_blocks`` of a trunk whose outputs are its stages' (in
        ``out_indices``, from 0): each stage's last block."""
        return tuple(self.stage_ends[s] for s in out_indices)

    def locate(self, block: int) -> Tuple[int, int]:
        """(stage, index in the stage) of block ``block`` (1..N)."""
        for stage, end in enumerate(self.stage_ends):
            if block <= end:
                return stage, block - (end - self.depths[stage]) - 1
        raise IndexError(f'block {block} of a {self.num_blocks}-block trunk')

    def forward(self, x):
        """The trunk on its own (full fine-tuning, ``fixed``, the PETL
        baselines): every block in turn, the outputs, the downsampling
        between stages."""
        ends, outs = self.stage_ends, {}
        with self.trunk_context():
            x, hw_shape = self.embed(x)
            for block in range(1, self.num_blocks + 1):
                x = self.run_block(block, x, hw_shape)
                if block in self.out_blocks:
                    outs[block] = self.block_output(block, x, hw_shape)
                if block in ends[:-1]:
                    x, hw_shape = self.downsample(
                        ends.index(block), x, hw_shape)
        return tuple(outs[b] for b in self.out_blocks)

    def __init__(self,
                 frozen: bool = False,
                 lean_checkpoint: bool = True,
                 init_cfg: Optional[dict] = None,
                 with_cp: Union[bool, str] = False,
                 **trunk_args):
        super().__init__(init_cfg=None)
        self.with_cp = check_cp_policy(with_cp)
        if init_cfg is not None and (init_cfg.get('type') != 'Pretrained'
                                     or 'checkpoint' not in init_cfg):
            raise ValueError(
                f'backbone init_cfg must be dict(type="Pretrained", '
                f'checkpoint=PATH) or None, got {init_cfg}')
        self.pretrained = init_cfg['checkpoint'] if init_cfg else None
        self.frozen = frozen
        self.lean_checkpoint = lean_checkpoint
        # {'source': file, 'sha256': fingerprint} once the trunk holds the
        # weights of a file; None while it is random
        self.trunk_record: Optional[dict] = None
        if trunk_args.get('pretrained'):
            raise ValueError('use init_cfg=dict(type="Pretrained", '
                             'checkpoint=...) instead of `pretrained` (set '
                             'model.pretrained=None in mmseg configs)')
        trunk_args.pop('pretrained', None)
        setattr(self, self.TRUNK, self.build_trunk(**trunk_args))
        # the trunk's own keys, before any variant adds modules to it
        self.trunk_keys = tuple(self.trunk.state_dict())
        if self.frozen:
            self.trunk.requires_grad_(False)
        self.register_lean_checkpoint_hooks()

    def build_trunk(self, **trunk_args) -> BaseModule:
        """The wrapped library backbone (not yet pretrained)."""
        raise NotImplementedError

    @property
    def trunk(self):
        return getattr(self, self.TRUNK)

    @property
    def trunk_prefix(self) -> str:
        return self.TRUNK + '.'

    @classmethod
    def frozen_only(cls, cls_name, kwargs):
        """For subclasses that always freeze: reject frozen=False."""
        if kwargs.pop('frozen', True) is not True:
            # the family's own wrapper: full fine-tuning's
            full = next(c for c in cls.__mro__ if 'FAMILY' in vars(c))
            raise ValueError(f'{cls_name} always freezes the '
                             f'{cls.TRUNK_NAME}; use {full.__name__}'
                             f'(frozen=False) for full fine-tuning')
        return kwargs

    def init_weights(self):
        # Deliberately not BaseModule.init_weights: the trunk's own
        # init_weights would re-randomise it when it has no init_cfg.
        if self.pretrained:
            self.load_pretrained()
        else:
            print_log(
                f'{type(self).__name__}: no pretrained checkpoint '
                f'(init_cfg=None): the {self.TRUNK_NAME} keeps its random '
                f'initialisation' +
                (' and stays frozen' if self.frozen else ''),
                logger='current',
                level=30)
        self._is_init = True

    def load_trunk_weights(self, filename: str) -> dict:
        """Fill every trunk weight from ``filename`` or raise (the family's
        :attr:`KEYS` schema says where its weights sit in files); returns a
        report with the ``sha256`` fingerprint of the result."""
        return load_trunk_weights(
            self.trunk, filename, self.KEYS, self.depths, keys=self.trunk_keys)

    def load_pretrained(self, filename: Optional[str] = None):
        """Fills the trunk from ``filename`` (default: ``init_cfg``)."""
        filename = filename or self.pretrained
        report = self.load_trunk_weights(filename)
        self.trunk_record = dict(source=filename, sha256=report['sha256'])

    def trunk_state(self):
        state = self.trunk.state_dict()
        return {k: state[k] for k in self.trunk_keys}

    def trunk_context(self):
        """Frozen trunk code runs without building an autograd graph."""
        return torch.no_grad() if self.frozen else nullcontext()

    # -- activation checkpointing ------------------------------------------
    @property
    def cp_policy(self) -> Union[bool, str]:
        """The checkpointing policy now: off unless training."""
        return self.with_cp if self.training else False

    def set_checkpointing(self, policy: Union[bool, str] = True) -> str:
        """Turns activation checkpointing on (keeping a policy already
        set); what ``checkpointed_parts = ['backbone', ...]`` does."""
        self.with_cp = self.with_cp or check_cp_policy(policy)
        return f'with_cp={self.with_cp!r}'
