"""Memory / speed / parameter measurements of whole detection and
segmentation models, one variant at a time, on the same synthetic batch.

Used by the scripts beside it (memory_speed.py runs each variant in a fresh
process for the CPU peak-memory figure) and by the tests on tiny models.
"""
import json
import math
import os
import os.path as osp
import statistics
import threading
import time

import torch
from mmengine.config import Config

from dtl_mm import paper_results
from dtl_mm.analysis.memory_estimate import measure_step_memory
from dtl_mm.analysis.saved_tensors import model_state_bytes, saved_for_backward
from dtl_mm.analysis.training_step import TrainingStep, synthetic_batch
from dtl_mm.apis.runner_setup import build_model
from dtl_mm.models.recompute import (CONFIG_KEY, checkpointing_requested,
                                     enable_activation_checkpointing,
                                     request_checkpointing)
from dtl_mm.utils.param_count import count_parameters

# the repository root: the configs are read from its configs/ folder
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The rows of the frontier: a base config, then what is checkpointed:
# '+cp' the backbone (with_cp=True: blocks autograd goes through, and a
# side network), '+sel' the backbone selectively (with_cp='selective'),
# '+heads' the neck and heads (the lowmem config's checkpointed_parts
# without its backbone, and its checkpointed RoI head type), '+trunk' the
# frozen trunk recomputed too (recompute_trunk=True; before that switch,
# '+cp' of a DTL backbone meant '+cp+trunk').
VARIANTS = ('full', 'full+cp', 'full+cp+heads', 'adaptformer',
            'adaptformer+cp', 'fixed', 'fixed+heads', 'dtlv2-ls',
            'dtlv2-ls+sel', 'dtlv2-ls+cp', 'dtlv2-ls+cp+trunk',
            'dtlv2-ls+sel+heads', 'dtlv2-ls+cp+heads',
            'dtlv2-ls+cp+heads+trunk')
BASE_VARIANTS = paper_results.VARIANTS
CP_SUFFIXES = {'cp': True, 'sel': 'selective'}
# the shipped config of each variant; the input size is the paper's
FAMILIES = {
    'coco':
    dict(
        config='configs/coco/cascade-mask-rcnn_swin-b_{}_fpn_3x_coco.py',
        size=paper_results.TABLES['coco']['size']),
    'voc':
    dict(
        config='configs/voc/retinanet_swin-l_{}_fpn_voc0712.py',
        size=paper_results.TABLES['voc']['size']),
    'ade20k':
    dict(
        config='configs/ade20k/upernet_swin-l_{}_160k_ade20k-512x512.py',
        size=paper_results.TABLES['ade20k']['size']),
    # not a set-up of the paper's dense-prediction tables (run it with
    # --family); needs mmpretrain (the `vision` stack)
    'ade20k-vit-b':
    dict(
        config='configs/vit_mmpretrain/'
        'upernet_vit-b_{}_160k_ade20k-512x512.py',
        size=(512, 512),
        title='UperNet + ViT-B/16 (mmpretrain, MultiLevelNeck)'),
}
AMP_DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}
PAPER_FAMILIES = tuple(f for f in FAMILIES if 'title' not in FAMILIES[f])


def scaled(size, scale):
    """``size`` times ``scale``, padded up to a multiple of 32 as the data
    preprocessors do (at least 64)."""
    return [max(64, math.ceil(s * scale / 32) * 32) for s in size]


def script_parser(doc):
    """An argument parser whose help is the script's docstring."""
    import argparse
    return argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(doc.splitlines()[1:]))


def describe(family):
    """A family's heading: the paper's table, or its own title."""
    return FAMILIES[family].get('title') or paper_results.describe(family)


def parse_variant(variant):
    """'dtlv2-ls+sel+heads' -> ('dtlv2-ls', 'selective', True)."""
    base, *extras = variant.split('+')
    unknown = set(extras) - set(CP_SUFFIXES) - {'heads', 'trunk'}
    if base not in BASE_VARIANTS or unknown or len(
            set(extras)) < len(extras) or {'cp', 'sel'} <= set(extras):
        raise ValueError(
            f'variant {variant!r}: a variant of {BASE_VARIANTS}, then '
            f'optionally +cp or +sel, then optionally +heads and +trunk')
    cp = next((CP_SUFFIXES[e] for e in extras if e in CP_SUFFIXES), False)
    return base, cp, 'heads' in extras


def checkpointed_heads(family):
    """The neck and heads the family's lowmem config checkpoints."""
    cfg = Config.fromfile(
        osp.join(ROOT, FAMILIES[family]['config'].format('dtlv2-ls-lowmem')))
    return [m for m in checkpointing_requested(cfg) if m != 'backbone']


def load_variant_config(family,
                        variant,
                        backbone_overrides=None,
                        model_overrides=None):
    """The shipped config of the variant's base, with its backbone
    checkpointing set and, for '+heads', the neck and heads the lowmem
    config checkpoints; random weights (they measure the same)."""
    base, cp, heads = parse_variant(variant)
    cfg = Config.fromfile(
        osp.join(ROOT, FAMILIES[family]['config'].format(base)))
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.with_cp = cp
    if 'trunk' in variant.split('+'):
        cfg.model.backbone.recompute_trunk = True
    request_checkpointing(cfg, checkpointed_heads(family) if heads else [])
    if backbone_overrides:
        cfg.model.backbone.update(backbone_overrides)
    if model_overrides:
        cfg.merge_from_dict(model_overrides)
    return cfg


def variant_step_memory(family, variant, batch, size, amp=None):
    """``dtl-mm memory``'s measurement of one training step of a variant:
    its backbone checkpointing and trunk recomputation as the name says,
    with '+heads' the neck and heads the lowmem config checkpoints."""
    cfg = load_variant_config(family, variant)
    return measure_step_memory(cfg, batch, size, amp=amp)


class RSSPeak:
    """Peak resident memory of this process while inside the block
    (sampled every millisecond from /proc/self/statm)."""

    def __enter__(self):
        self.page = os.sysconf('SC_PAGE_SIZE')
        self.peak = self.read()
        self.running = True
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()
        return self

    def read(self):
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * self.page

    def poll(self):
        while self.running:
            self.peak = max(self.peak, self.read())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def peak_memory(step):
    """Peak GPU memory of one training step (``max_memory_allocated``:
    weights, gradients, AdamW state, activations, recomputation)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    return dict(peak_bytes=torch.cuda.max_memory_allocated())


def step_time(step, warmup=1, repeats=3):
    """Median time of a training step after ``warmup`` steps: wall-clock
    time, and the CPU time of all the process's threads.

    On a GPU the wall time (synchronised) is what compares. On a CPU
    shared with other work the wall time mostly measures the other work;
    the process's CPU time (threads sleep instead of spinning while they
    wait: OMP_WAIT_POLICY=PASSIVE) measures the step's own.
    """
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    on_gpu = step.device.type == 'cuda'
    return dict(
        step_time_s=statistics.median(wall if on_gpu else cpu),
        step_clock='wall' if on_gpu else 'cpu',
        step_wall_s=statistics.median(wall),
        step_cpu_s=statistics.median(cpu))


@torch.no_grad()
def backbone_throughput(model,
                        device,
                        size,
                        batches=(1, 4, 16),
                        repeats=3,
                        amp=True):
    """Images per second through the backbone alone (paper Table 16: mixed
    precision on a GPU; fp32 on the CPU)."""
    backbone = model.backbone.to(device).eval()
    out = {}
    for bs in batches:
        x = torch.randn(bs, 3, *size, device=device)
        ctx = torch.autocast(
            'cuda', dtype=torch.float16) if (
                amp and device.type == 'cuda') else torch.autocast(
                    'cpu', enabled=False)
        with ctx:
            backbone(x)  # warm-up
            if device.type == 'cuda':
                torch.cuda.synchronize()
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                backbone(x)
                if device.type == 'cuda':
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
        out[f'throughput_bs{bs}'] = bs / statistics.median(times)
    return out


def measure(family,
            variant,
            device='cpu',
            batch=2,
            size=None,
            infer_size=None,
            infer_batches=(),
            repeats=3,
            backbone_overrides=None,
            model_overrides=None,
            what=('params', 'saved', 'peak', 'time', 'throughput'),
            amp=None):
    """All figures of one variant, as a flat dict. ``memory_bytes`` is the
    GPU peak on a GPU and model state + saved for backward on the CPU.
    ``amp``: 'fp16' or 'bf16' runs the forward under autocast."""
    device = torch.device(device)
    size = tuple(size or FAMILIES[family]['size'])
    torch.manual_seed(0)
    cfg = load_variant_config(family, variant, backbone_overrides,
                              model_overrides)
    model = build_model(cfg)
    enable_activation_checkpointing(model, cfg[CONFIG_KEY])
    counts = count_parameters(model)
    row = dict(
        family=family,
        variant=variant,
        device=str(device),
        batch=batch,
        size=list(size),
        params_backbone_side=counts['trunk']['trainable'] +
        counts['side network']['trainable'],
        params_trainable=sum(c['trainable'] for c in counts.values()),
        params_total=sum(c['trainable'] + c['frozen']
                         for c in counts.values()),
        amp=amp or 'fp32',
        model_state_bytes=model_state_bytes(model))
    step = TrainingStep(model, synthetic_batch(cfg, batch, size), device,
                        AMP_DTYPES.get(amp))
    if 'peak' in what and device.type == 'cuda':
        # first, so no earlier step's buffers are around
        row.update(peak_memory(step))
    if 'saved' in what:
        row.update(saved_for_backward(step))
    if 'peak_bytes' in row:
        row['memory_bytes'] = row['peak_bytes']
    elif 'saved_total' in row:
        row['memory_bytes'] = row['model_state_bytes'] + row['saved_total']
    if 'time' in what:
        row.update(step_time(step, repeats=repeats))
    if 'throughput' in what and infer_batches:
        step.optim = None
        row.update(
            backbone_throughput(model, device, tuple(infer_size or size),
                                infer_batches, repeats))
    return row


def save_results(out, table, results, chart=None):
    """Prints the Markdown ``table`` and writes it as ``out/results.md``,
    ``results`` as ``out/results.json`` and, given ``chart=(draw, name)``,
    ``draw(out/name)``: every benchmark script's output, in one place."""
    os.makedirs(out, exist_ok=True)
    print('\n' + table)
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write(table.rstrip('\n') + '\n')
    with open(osp.join(out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    written = ['results.md', 'results.json']
    if chart:
        draw, name = chart
        draw(osp.join(out, name))
        written.append(name)
    print(f'\nwritten: {out}/' + ', '.join(written))
