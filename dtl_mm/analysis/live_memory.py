"""Peak bytes of tensor storage alive while code runs: what a GPU's
``max_memory_allocated`` reports for the same code, measured on any device.

Every op runs through a ``TorchDispatchMode``; each storage an op creates is
counted from then until torch frees it (a weak reference to the storage,
checked after every op), once however many tensors view it. Storages that
existed before (the weights, the inputs) are the caller's ``resident`` and
are not counted. What it cannot see: memory a kernel allocates for itself
(a GPU library's workspace) and allocator rounding; and it counts what the
CPU computes, so an op whose GPU kernel keeps less (a fused loss) is
counted as the CPU runs it. The calibration in
:mod:`dtl_mm.analysis.memory_estimate` measures how far that is from a
GPU's figure.
"""
from typing import Dict, Iterable

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    """Use as a context manager around the code to measure; ``peak`` is the
    most bytes alive at once (beyond ``resident``), ``peaks[phase]`` the
    same within each phase named by :meth:`phase`."""

    def __init__(self, resident: Iterable[torch.Tensor] = ()):
        super().__init__()
        self.resident = {
            StorageWeakRef(t.untyped_storage()).cdata
            for t in resident
        }
        self.live: Dict[int, tuple] = {}  # cdata -> (weak ref, bytes)
        self.now = 0
        self.peak = 0
        self.peaks: Dict[str, int] = {}
        self.current = 'all'

    def phase(self, name: str):
        """From now on, peaks are also recorded under ``name``."""
        self._sweep()
        self.current = name
        self.peaks[name] = max(self.peaks.get(name, 0), self.now)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self._sweep()
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.layout == torch.strided \
                    and t.device.type != 'meta':
                self._add(t.untyped_storage())
        self.peak = max(self.peak, self.now)
        self.peaks[self.current] = max(
            self.peaks.get(self.current, 0), self.now)
        return out

    def _add(self, storage):
        ref = StorageWeakRef(storage)
        if ref.cdata in self.resident or ref.cdata in self.live:
            return
        self.live[ref.cdata] = (ref, storage.nbytes())
        self.now += storage.nbytes()

    def _sweep(self):
        dead = [k for k, (ref, _) in self.live.items() if ref.expired()]
        for k in dead:
            self.now -= self.live.pop(k)[1]

    def alive(self) -> int:
        """Bytes still alive now (beyond ``resident``)."""
        self._sweep()
        return self.now
