"""Predict the GPU memory a config's training needs, without a GPU.

    python tools/memory.py CONFIG [--batch N] [--size H W | --scale S]
                           [--amp fp16|bf16] [--gpu-mem 24G]

Runs one training step of the config's own model (random weights; no
download) on a synthetic batch at the training input size, on this
machine's CPU, and counts every tensor it keeps (dtl_mm.analysis). Prints
the model state (weights, gradients, optimizer moments), what the step
keeps for backward (backbone / side network / neck and heads), and the
predicted GPU peak (what torch.cuda.max_memory_allocated reports from the
second step on) with its error band, validated against GPU measurements in
docs/benchmarks.md. With --gpu-mem: whether it fits that card, the largest
batch that fits, and which checkpointing setting fits (each measured).
The CPU runs the same step, so it needs about as much free memory as the
step; with less, --measure-at 0.5 measures smaller inputs and extrapolates.
"""
import argparse
import copy
import math
import time

import torch
from mmengine.config import DictAction

from dtl_mm.analysis import memory_estimate as estimate
from dtl_mm.apis.runner_setup import read_config
from dtl_mm.models.recompute import (checkpointing_requested,
                                     request_checkpointing)
from dtl_mm.utils.package_files import config_arg
from dtl_mm.utils.tool_errors import run_tool

AMP = {'fp16': torch.float16, 'bf16': torch.bfloat16}
MB = 1 << 20
GB = 1 << 30


def memory_arg(text):
    try:
        return estimate.parse_memory(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    p.add_argument('config', type=config_arg, metavar='CONFIG')
    p.add_argument(
        '--batch',
        type=int,
        help='images per GPU (default: the config\'s train batch size)')
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        '--size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size (default: the largest the training pipeline makes)')
    size.add_argument(
        '--scale', type=float, help='the default input size times this factor')
    p.add_argument(
        '--amp',
        choices=sorted(AMP),
        help='mixed precision (the forward under autocast; on the CPU it is '
        'measured with bf16, which has fp16\'s size)')
    p.add_argument(
        '--gpu-mem',
        type=memory_arg,
        metavar='SIZE',
        help='a card\'s memory, e.g. 24G: report what fits it')
    p.add_argument(
        '--measure-at',
        type=float,
        metavar='F',
        help='measure at F and F/2 of each side of the input and '
        'extrapolate: for a machine with less free memory than the step '
        'needs (the CPU runs the same step); e.g. 0.5')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    args = p.parse_args(argv)
    if args.batch is not None and args.batch < 1:
        p.error(f'--batch: at least 1, got {args.batch}')
    if args.size is not None and min(args.size) < 1:
        p.error(f'--size: a positive height and width, got '
                f'{args.size[0]} {args.size[1]}')
    if args.gpu_mem is not None and \
            args.gpu_mem <= estimate.GPU_HEADROOM:
        p.error(f'--gpu-mem: more than the '
                f'{estimate.GPU_HEADROOM / GB:.0f} GB a card needs for the '
                f'CUDA context and the allocator, got {args.gpu_mem / GB:.3g} '
                f'GB')
    if args.measure_at is not None and not 0 < args.measure_at < 1:
        p.error(f'--measure-at: a fraction in (0, 1), got {args.measure_at}')
    if args.scale is not None and args.scale <= 0:
        p.error(f'--scale: a positive factor, got {args.scale}')
    return args


def load(args):
    cfg = read_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def input_size(cfg, args):
    if args.size:
        return tuple(args.size)
    h, w = estimate.training_input_size(cfg)
    if args.scale:
        div = cfg.model.get('data_preprocessor',
                            {}).get('pad_size_divisor') or 1
        h, w = (math.ceil(x * args.scale / div) * div for x in (h, w))
    return h, w


def supports_trunk_recompute(cfg):
    """Whether the config's backbone has the ``recompute_trunk`` switch."""
    import inspect

    from mmengine.registry import MODELS
    cls = MODELS.get(cfg.model.backbone.type)
    return cls is not None and \
        'recompute_trunk' in inspect.signature(cls.__init__).parameters


def setting_key(cfg):
    """(backbone checkpointed, other parts checkpointed, trunk recomputed)."""
    parts = checkpointing_requested(cfg)
    return (bool(cfg.model.backbone.get('with_cp'))
            or 'backbone' in parts, tuple(p for p in parts if p != 'backbone'),
            bool(cfg.model.backbone.get('recompute_trunk')))


def settings(cfg):
    """The checkpointing settings to compare: [(name, config)], the
    configured one first, each once."""
    heads = [p for p in estimate.HEAD_PARTS if cfg.model.get(p)]

    def variant(with_cp, parts, trunk=False):
        c = copy.deepcopy(cfg)
        c.model.backbone.with_cp = with_cp
        if trunk or 'recompute_trunk' in c.model.backbone:
            c.model.backbone.recompute_trunk = trunk
        request_checkpointing(c, parts)
        return c

    options = [('as configured', cfg),
               ('backbone with_cp=True', variant(True, [])),
               ('backbone + neck and heads checkpointed', variant(True,
                                                                  heads))]
    if supports_trunk_recompute(cfg):
        options.append(('everything checkpointed, trunk recomputed',
                        variant(True, heads, trunk=True)))
    seen, out = set(), []
    for name, c in options:
        if setting_key(c) not in seen:
            seen.add(setting_key(c))
            out.append((name, c))
    return out


def report(memory, batch, amp_name, optimizer):
    pred, low, high = estimate.predicted_gpu_peak(memory)
    first = estimate.predicted_gpu_peak(memory, steady=False)[0]
    rows = [
        ('weights and buffers', memory.weights),
        ('gradients (trainable weights)', memory.gradients),
        (f'optimizer moments ({optimizer})', memory.moments),
        (f'input batch ({batch} image{"s" if batch > 1 else ""})',
         memory.inputs),
        ('saved for backward: backbone', memory.saved_backbone),
        ('saved for backward: side network', memory.saved_side),
        ('saved for backward: neck and heads', memory.saved_heads),
        ('forward + backward peak beyond weights and inputs',
         memory.forward_backward_peak),
        ('optimizer step peak beyond weights and inputs',
         memory.optimizer_peak),
    ]
    lines = ['| part | MB |', '|---|---|']
    lines += [f'| {name} | {n / MB:,.0f} |' for name, n in rows]
    lines.append(f'| **predicted GPU peak** ({amp_name}; first step '
                 f'{first / GB:.2f} GB) | **{pred / MB:,.0f}** '
                 f'({low / GB:.2f}–{high / GB:.2f} GB) |')
    return '\n'.join(lines)


def measure(cfg, batch, size, amp, measure_at=None):
    """(memory, how it was measured). ``measure_at``: measure at that
    fraction of each side and at half of it, and extrapolate to ``size``
    (linearly in pixels)."""
    if measure_at:
        div = cfg.model.get('data_preprocessor',
                            {}).get('pad_size_divisor') or 32
        sa, sb = (
            tuple(max(div,
                      math.ceil(s * f / div) * div) for s in size)
            for f in (measure_at, measure_at / 2))
        (a, how), (b, _) = (measure(cfg, batch, s, amp) for s in (sa, sb))
        return estimate.at_pixels(
            a, sa[0] * sa[1], b, sb[0] * sb[1], size[0] * size[1]), (
                f' (extrapolated from {sa[0]}x{sa[1]} and {sb[0]}x{sb[1]}, '
                f'linearly in pixels{how})')
    return measure_batch(cfg, batch, size, amp)


def measure_batch(cfg, batch, size, amp):
    """(memory, how): a batch of one that batch norm cannot train on here
    (on GPUs, SyncBN normalises over all of them) is measured at two images
    and scaled to one."""
    try:
        return estimate.measure_step_memory(cfg, batch, size, amp=amp), ''
    except ValueError as e:
        if batch != 1 or 'more than 1 value per channel' not in str(e):
            raise
    two = estimate.measure_step_memory(cfg, 2, size, amp=amp)
    return estimate.at_batch(two, 2, 1), \
        ' (at batch 2, scaled to 1: batch norm needs two images here)'


def verdict(memory, gpu_bytes):
    return 'fits' if estimate.fits(memory, gpu_bytes) else 'does not fit'


def main(argv=None):
    args = parse_args(argv)
    cfg = load(args)
    size = input_size(cfg, args)
    batch = args.batch or cfg.train_dataloader.batch_size
    amp = AMP.get(args.amp)
    measured_amp = torch.bfloat16 if amp is not None else None
    optimizer = cfg.optim_wrapper.optimizer.type
    print(f'{args.config}: batch {batch}, input {size[0]}x{size[1]}, '
          f'{args.amp or "fp32"}, {optimizer} '
          f'({estimate.moments_per_weight(cfg)} moments per trainable weight)')
    started = time.time()
    memory, how = measure(cfg, batch, size, measured_amp, args.measure_at)
    print(f'measured: one training step on the CPU at this size{how}, '
          f'random weights ({time.time() - started:.0f} s). The prediction '
          f'was '
          f'within ±{estimate.GPU_CALIBRATION["band"]:.0%} of '
          f'{estimate.GPU_CALIBRATION["validated_on"]} (docs/benchmarks.md)\n')
    print(report(memory, batch, args.amp or 'fp32', optimizer))
    if any(setting_key(cfg)):
        print('\nThis configuration checkpoints: no checkpointed step has '
              'been measured on a GPU yet, so its band is not checked.')
    if args.gpu_mem is None:
        return 0
    card = args.gpu_mem / GB
    print(f'\nOn a {card:.3g} GB card (needs the upper band plus '
          f'{estimate.GPU_HEADROOM / GB:.0f} GB for the CUDA context and the '
          f'allocator):')
    print(f'- as configured: {verdict(memory, args.gpu_mem)} at batch '
          f'{batch}; the largest batch that fits: '
          f'{estimate.largest_batch(memory, batch, args.gpu_mem)}')
    for name, other_cfg in settings(cfg)[1:]:
        other, _ = measure(other_cfg, batch, size, measured_amp,
                           args.measure_at)
        pred = estimate.predicted_gpu_peak(other)[0]
        print(f'- {name}: {pred / GB:.2f} GB at batch {batch}, '
              f'{verdict(other, args.gpu_mem)}; the largest batch that fits: '
              f'{estimate.largest_batch(other, batch, args.gpu_mem)}')
    return 0


if __name__ == '__main__':
    run_tool(main)
