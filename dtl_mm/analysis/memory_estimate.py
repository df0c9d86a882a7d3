"""The GPU memory a config's training step needs, measured without a GPU.

One training step of the config's own model (random weights: memory does
not depend on their values) runs on a synthetic batch with ground truth at
the training input size, under :class:`~.live_memory.LiveBytes`. The parts:

- model state: weights and buffers; a gradient per trainable weight; the
  optimizer's moments (AdamW: two per trainable weight);
- saved for backward, by part of the model (:mod:`.saved_tensors`);
- the step's peak of live tensors beyond the weights and inputs, in
  forward + backward and in the optimizer step.

A GPU's ``max_memory_allocated`` over a step is then the weights and inputs
plus the larger of the two phase peaks, with the moments resident during
forward + backward from the second step on (the first step creates them
after backward). The figure measured on the CPU differs from a GPU's where
kernels differ (a GPU's fused losses keep less, its libraries allocate
workspaces); :data:`GPU_CALIBRATION` corrects for it, fitted and validated
against GPU peaks by ``tools/benchmarks/memory_prediction.py``.
"""
import copy
import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple

import torch

from .live_memory import LiveBytes
from .saved_tensors import kept_by_part, parameter_bytes
from .training_step import TrainingStep, synthetic_batch

# what measured CPU bytes are on a GPU: peak_gpu = weights + inputs +
# (resident moments) + scale * (the phase peak), and the relative error
# band of that prediction on the GPU rows held back from the fit. From
# tools/benchmarks/memory_prediction.py's run in
# docs/benchmarks/memory_prediction (a test keeps the two equal).
GPU_CALIBRATION = dict(
    scale=1.017,
    band=0.02,
    validated_on='16 training steps measured on an NVIDIA H200 (RetinaNet '
    'and UperNet, Swin-L; every variant, none checkpointed)')

# optimizer state per trainable weight, in weights
OPTIMIZER_MOMENTS = {'AdamW': 2, 'Adam': 2, 'SGD': 1, 'RMSprop': 1}
# the parts mmdet / mmseg models checkpoint besides the backbone
HEAD_PARTS = ('neck', 'rpn_head', 'roi_head', 'bbox_head', 'decode_head',
              'auxiliary_head')


class AMPNotMeasurable(ValueError):
    """The model's mixed-precision step cannot run on the CPU."""


@dataclass
class StepMemory:
    """Bytes of one training step's memory, by part."""
    weights: int  # parameters and buffers
    gradients: int  # one per trainable weight
    moments: int  # the optimizer's state
    inputs: int  # the preprocessed batch
    saved_backbone: int
    saved_side: int
    saved_heads: int
    forward_backward_peak: int  # live beyond weights and inputs
    optimizer_peak: int  # live beyond weights and inputs, moments included

    @property
    def saved(self) -> int:
        return self.saved_backbone + self.saved_side + self.saved_heads

    def peak(self, steady: bool = True, scale: float = 1.0) -> float:
        """The step's peak: ``steady`` from the second step on (the moments
        resident during forward + backward), else the first step's."""
        moments = self.moments if steady else 0
        return self.weights + self.inputs + max(
            moments + scale * self.forward_backward_peak,
            scale * self.optimizer_peak)

    def as_dict(self) -> dict:
        return asdict(self)


def predicted_gpu_peak(
        memory: StepMemory,
        steady: bool = True,
        calibration: Optional[dict] = None) -> Tuple[float, float, float]:
    """(predicted, low, high) GPU peak in bytes."""
    cal = calibration or GPU_CALIBRATION
    peak = memory.peak(steady, cal['scale'])
    return peak, peak * (1 - cal['band']), peak * (1 + cal['band'])


def _pipelines(dataset):
    """The transform lists of a (wrapped) dataset config."""
    if not isinstance(dataset, dict):
        return
    if dataset.get('pipeline'):
        yield dataset['pipeline']
    yield from _pipelines(dataset.get('dataset'))
    for d in dataset.get('datasets') or []:
        yield from _pipelines(d)


def _transforms(pipeline):
    for t in pipeline or []:
        if isinstance(t, (list, tuple)):
            yield from _transforms(t)
        elif isinstance(t, dict):
            yield t
            yield from _transforms(t.get('transforms'))


def training_input_size(cfg) -> Tuple[int, int]:
    """The largest input (H, W) the config's training pipeline makes:
    its crop for a segmentor that crops; else the largest resize scale,
    an image of that scale's aspect ratio (short side, long side), padded
    to the data preprocessor's divisor."""
    transforms = [
        t for p in _pipelines(cfg.train_dataloader.dataset)
        for t in _transforms(p)
    ]
    if cfg.default_scope == 'mmseg':
        crops = [
            tuple(t['crop_size']) for t in transforms if t.get('crop_size')
        ]
        if crops:
            return max(crops, key=lambda s: s[0] * s[1])
    scales = []
    for t in transforms:
        if t.get('scale') is not None and 'Resize' in t.get('type', ''):
            scales.append(tuple(t['scale']))
        scales.extend(tuple(s) for s in t.get('scales') or [])
    if not scales:
        raise ValueError(
            f'{getattr(cfg, "filename", "config")}: no resize scale or '
            f'crop in the training pipeline to take the input size from; '
            f'give it (--size H W)')
    short, long = max((min(s), max(s)) for s in scales)
    divisor = cfg.model.get('data_preprocessor',
                            {}).get('pad_size_divisor') or 1
    return (math.ceil(short / divisor) * divisor,
            math.ceil(long / divisor) * divisor)


def moments_per_weight(cfg) -> int:
    optimizer = cfg.get('optim_wrapper', {}).get('optimizer', {})
    kind = optimizer.get('type', 'AdamW').split('.')[-1]
    if kind == 'SGD' and not optimizer.get('momentum'):
        return 0
    return OPTIMIZER_MOMENTS.get(kind, 2)


def model_for_memory(cfg,
                     with_cp=None,
                     checkpointing: Optional[Sequence[str]] = None):
    """The config's model with random weights (no download), with the
    backbone's ``with_cp`` and the parts checkpointed as given (None: as
    the config has them)."""
    from ..apis.runner_setup import build_model
    from ..models.recompute import (CONFIG_KEY,
                                    enable_activation_checkpointing,
                                    request_checkpointing)
    cfg = copy.deepcopy(cfg)
    backbone = cfg.model.backbone
    backbone.init_cfg = None
    backbone.pop('pretrained', None)
    if with_cp is not None:
        backbone.with_cp = with_cp
    if checkpointing is not None:
        request_checkpointing(cfg, checkpointing)
    torch.manual_seed(0)
    model = build_model(cfg)
    enable_activation_checkpointing(model, cfg.get(CONFIG_KEY) or [])
    return model


def measure_step_memory(cfg,
                        batch: int,
                        size: Tuple[int, int],
                        amp: Optional[torch.dtype] = None,
                        with_cp=None,
                        checkpointing: Optional[Sequence[str]] = None,
                        device: str = 'cpu') -> StepMemory:
    """One training step of ``cfg``'s model on ``batch`` images of
    ``size`` (H, W), measured (see the module's docstring)."""
    model = model_for_memory(cfg, with_cp, checkpointing)
    step = TrainingStep(model, synthetic_batch(cfg, batch, size), device, amp)
    weights, grads = parameter_bytes(model)
    inputs = step.data['inputs']  # the preprocessed batch tensor
    with LiveBytes([*model.parameters(), *model.buffers(), inputs]) as live:
        live.phase('forward_backward')
        try:
            with kept_by_part(model) as kept:
                loss = step.loss()
        except RuntimeError as e:
            if amp is not None and 'BFloat16' in str(e):
                raise AMPNotMeasurable(
                    f'mixed precision cannot be measured on the CPU for '
                    f'this model: an mmcv op it trains through (e.g. the '
                    f'RPN\'s nms, RoIAlign) has a CPU kernel for fp32 only '
                    f'({e}); measure it in fp32, or on a GPU') from e
            raise
        if loss.requires_grad:
            loss.backward()
        live.phase('optimizer')
        if step.optim is not None:
            step.optim.step()
    # AdamW's state, in the config's optimizer's number of moments
    adamw_moments = sum(
        t.numel() * t.element_size()
        for state in (step.optim.state.values() if step.optim else [])
        for t in state.values() if isinstance(t, torch.Tensor) and t.dim())
    return StepMemory(
        weights=weights,
        gradients=grads,
        moments=adamw_moments * moments_per_weight(cfg) // 2,
        inputs=inputs.numel() * inputs.element_size(),
        saved_backbone=kept.total('backbone'),
        saved_side=kept.total('side'),
        saved_heads=kept.total('heads'),
        forward_backward_peak=live.peaks.get('forward_backward', 0),
        optimizer_peak=live.peaks.get('optimizer', 0))


# what grows with the input and the batch (the model state does not)
INPUT_DEPENDENT = ('inputs', 'saved_backbone', 'saved_side', 'saved_heads',
                   'forward_backward_peak')
# what a card needs beyond the step's peak of allocated tensors: the CUDA
# context and what the caching allocator holds but has not handed out
GPU_HEADROOM = 1 << 30


def parse_memory(text: str) -> int:
    """'24G', '24GB', '24GiB', '40960M' -> bytes (G and GB are GiB, as
    cards are sold: an "80 GB" card has 80 GiB)."""
    units = {'G': 1 << 30, 'M': 1 << 20}
    t = text.strip().upper().replace('IB', '').replace('B', '')
    unit = units.get(t[-1:], None)
    try:
        value = float(t[:-1] if unit else t)
    except ValueError:
        raise ValueError(f'memory size: a number with G or M, e.g. 24G or '
                         f'40960M, got {text!r}') from None
    return int(value * (unit or units['G']))


def at_batch(memory: StepMemory, measured_batch: int,
             batch: int) -> StepMemory:
    """``memory`` measured at ``measured_batch``, at another batch size: the
    inputs and what forward + backward keeps grow with the batch; the model
    state does not."""
    f = batch / measured_batch
    scaled = dict(memory.as_dict())
    for key in INPUT_DEPENDENT:
        scaled[key] = int(scaled[key] * f)
    return StepMemory(**scaled)


def fits(memory: StepMemory,
         gpu_bytes: int,
         calibration: Optional[dict] = None) -> bool:
    """Whether the step fits a card of ``gpu_bytes``: its predicted peak's
    upper band plus :data:`GPU_HEADROOM`."""
    return predicted_gpu_peak(memory, True, calibration)[2] + \
        GPU_HEADROOM <= gpu_bytes


def largest_batch(memory: StepMemory,
                  measured_batch: int,
                  gpu_bytes: int,
                  calibration: Optional[dict] = None,
                  limit: int = 1024) -> int:
    """The largest batch size that :func:`fits` (0: not even one image)."""
    best = 0
    for b in range(1, limit + 1):
        if not fits(
                at_batch(memory, measured_batch, b), gpu_bytes, calibration):
            break
        best = b
    return best


def at_pixels(a: StepMemory, a_pixels: int, b: StepMemory, b_pixels: int,
              pixels: int) -> StepMemory:
    """The step at ``pixels`` per image, from measurements ``a`` and ``b``
    at two smaller inputs: each input-dependent part on the straight line
    through the two (per-pixel activations plus what does not grow with
    the image, such as a fixed number of RoIs)."""
    if a_pixels == b_pixels:
        raise ValueError('two different input sizes are needed')
    out = dict(a.as_dict())
    for key in INPUT_DEPENDENT:
        va, vb = getattr(a, key), getattr(b, key)
        slope = (va - vb) / (a_pixels - b_pixels)
        out[key] = max(0, int(round(va + slope * (pixels - a_pixels))))
    return StepMemory(**out)
