"""What each checkpointing policy keeps and costs, per kind of region.

    python tools/benchmarks/recompute_policies.py --out OUT [--scale 1.0]
        [--repeats 5] [--device cpu]

The regions DTL differentiates through, alone, at the sizes they have in
COCO Cascade Mask R-CNN Swin-B at 800x1344 (--scale shrinks the token grid):
a frozen Swin block of stage 3 behind an add-back (its input requires
grad), the side network's enhanced fusion G and a read w at the same place,
and a read at stage 1 (where the rank 256 is wider than the 128 channels).
For each policy: bytes kept for backward beyond the region's inputs
(``dtl_mm.analysis.saved_tensors.KeptBytes``) and the median time of
forward + backward (CPU time of the process on the CPU, wall time on a
GPU). The selective policy
the package uses (``recompute.keep_widening_products``) is compared with
keeping every matrix product, the usual selective-checkpointing policy for
trained weights. Writes results.md and results.json.
"""
import argparse
import math
import statistics
import sys
import time
from functools import partial

import torch
from measure import save_results
from mmdet.models.backbones.swin import SwinBlock
from torch.utils.checkpoint import (CheckpointPolicy, checkpoint,
                                    create_selective_checkpoint_contexts)

from dtl_mm.analysis.saved_tensors import KeptBytes
from dtl_mm.models import recompute
from dtl_mm.models.side_network import EnhancedFusion, LowRankMap

_aten = torch.ops.aten
PRODUCTS = {
    _aten.mm.default, _aten.addmm.default, _aten.bmm.default,
    _aten.convolution.default
}


def keep_every_product(ctx, op, *args, **kwargs):
    return (CheckpointPolicy.MUST_SAVE
            if op in PRODUCTS else CheckpointPolicy.PREFER_RECOMPUTE)


POLICIES = {
    'keep all (no checkpoint)': None,
    'recompute all': True,
    'selective: every product': keep_every_product,
    'selective: widening products (used)': recompute.keep_widening_products,
}


def regions(scale, device):
    """name -> (module, inputs); channels and grids of Swin-B at
    800x1344: stage 1 is 200x336 tokens of 128, stage 3 50x84 of 512."""

    def grid(h, w):
        return max(7, math.ceil(h * scale)), max(7, math.ceil(w * scale))

    s3, s1 = grid(50, 84), grid(200, 336)
    block = SwinBlock(
        512, 16, 2048, window_size=7, shift=True).requires_grad_(False)
    x3 = torch.randn(1, s3[0] * s3[1], 512)
    x1 = torch.randn(1, s1[0] * s1[1], 128)
    fusion = EnhancedFusion(512, 'dwconv', 3, 100.0, 256)
    torch.nn.init.normal_(fusion.proj.up.weight, std=0.02)
    out = {
        'Swin block, stage 3 (frozen, input needs grad)':
        (lambda x: block(x, s3), [x3.requires_grad_()]),
        'side network: fusion G, stage 3': (lambda h: fusion(h, s3), [x3]),
        'side network: read w, stage 3 (rank 256 < 512)':
        (LowRankMap(512, 256), [x3.detach()]),
        'side network: read w, stage 1 (rank 256 > 128)':
        (LowRankMap(128, 256), [x1]),
    }
    for name, (fn, inputs) in out.items():
        if isinstance(fn, torch.nn.Module):
            fn.to(device)
        out[name] = (fn, [t.to(device) for t in inputs])
    return out


def run(fn, inputs, policy):
    if policy is None:
        return fn(*inputs)
    if policy is True:
        return checkpoint(fn, *inputs, use_reentrant=False)
    return checkpoint(
        fn,
        *inputs,
        use_reentrant=False,
        context_fn=partial(create_selective_checkpoint_contexts,
                           recompute.selective_policy))


def measure_region(fn, inputs, policy, repeats, device):
    params = [p for p in getattr(fn, 'parameters', lambda: [])()]
    recompute.selective_policy = policy if callable(policy) else \
        recompute.keep_widening_products
    with KeptBytes(params + list(inputs)) as kept:
        out = run(fn, inputs, policy)
    out.sum().backward()
    # CPU time of the process on a (shared) CPU, wall time on a GPU; the
    # first run warms up
    clock = time.perf_counter if device.type == 'cuda' else time.process_time
    times = []
    for _ in range(repeats + 1):
        t = clock()
        run(fn, inputs, policy).sum().backward()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(clock() - t)
    return kept.total(), statistics.median(times[1:])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required=True)
    p.add_argument('--scale', type=float, default=1.0)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--device', default='cpu')
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    results = {}
    for name, (fn, inputs) in regions(args.scale, device).items():
        results[name] = {}
        for label, policy in POLICIES.items():
            kept, t = measure_region(fn, inputs, policy, args.repeats, device)
            results[name][label] = dict(kept_bytes=kept, time_s=t)
            print(
                f'{name} | {label}: {kept / 2**20:.1f} MB, {t * 1e3:.1f} '
                'ms',
                file=sys.stderr,
                flush=True)
    lines = [
        f'scale {args.scale}, {args.device}, median of {args.repeats} '
        f'(time: {"wall" if device.type == "cuda" else "CPU time"})', '',
        '| region | policy | kept for backward (MB) | ÷ keep all | '
        'forward + backward (ms) | ÷ keep all |', '|---' * 6 + '|'
    ]
    for name, rows in results.items():
        ref = rows['keep all (no checkpoint)']
        for label, r in rows.items():
            lines.append(
                f'| {name} | {label} | {r["kept_bytes"] / 2**20:.1f} | '
                f'{r["kept_bytes"] / ref["kept_bytes"]:.2f} | '
                f'{r["time_s"] * 1e3:.1f} | '
                f'{r["time_s"] / ref["time_s"]:.2f} |')
    save_results(args.out, '\n'.join(lines), results)


if __name__ == '__main__':
    main()
