"""Memory / speed / parameter measurements of whole detection and
segmentation models, one variant at a time, on the same synthetic batch.

Used by the scripts beside it (memory_speed.py runs each variant in a fresh
process for the CPU peak-memory figure) and by the tests on tiny models.
"""
import json
import os
import os.path as osp
import statistics
import threading
import time

import torch
from mmengine.config import Config

from dtl_mm import paper_results
from dtl_mm.param_count import count_parameters
from dtl_mm.runner_setup import build_model

# the repository root: the configs are read from its configs/ folder
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VARIANTS = ('full', 'fixed', 'lora', 'adapter', 'adaptformer', 'dtlv1',
            'dtlv2', 'dtlv2-ls', 'dtlv2-ls+cp')
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
}


def load_variant_config(family,
                        variant,
                        backbone_overrides=None,
                        model_overrides=None):
    """The shipped config of ``variant`` (a '+cp' suffix turns on
    activation checkpointing of the blocks autograd goes through)."""
    base, _, extra = variant.partition('+')
    cfg = Config.fromfile(
        osp.join(ROOT, FAMILIES[family]['config'].format(base)))
    cfg.model.backbone.init_cfg = None  # random weights measure the same
    if extra == 'cp':
        cfg.model.backbone.with_cp = True
    if backbone_overrides:
        cfg.model.backbone.update(backbone_overrides)
    if model_overrides:
        cfg.merge_from_dict(model_overrides)
    return cfg


def synthetic_batch(cfg, batch, size, seed=0):
    """Raw inputs + data samples with ground truth, as a data loader gives
    them; the same for every variant of a family."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    inputs = [
        torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
        for _ in range(batch)
    ]
    samples = []
    for _ in range(batch):
        meta = dict(
            img_shape=(h, w),
            ori_shape=(h, w),
            pad_shape=(h, w),
            scale_factor=(1.0, 1.0),
            flip=False)
        if cfg.default_scope == 'mmdet':
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            from mmengine.structures import InstanceData
            n = 8
            xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.7
            wh = (torch.rand(n, 2, generator=g) * 0.25 + 0.05) * \
                torch.tensor([w, h])
            boxes = torch.cat([xy, xy + wh], 1)
            inst = InstanceData(
                bboxes=boxes, labels=torch.randint(0, 20, (n, ), generator=g))
            if cfg.model.get('roi_head', {}).get('mask_head') is not None:
                masks = torch.zeros(n, h, w, dtype=torch.uint8)
                for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
                    masks[i, y1:y2, x1:x2] = 1
                inst.masks = BitmapMasks(masks.numpy(), h, w)
            s = DetDataSample(metainfo=meta)
            s.gt_instances = inst
        else:
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample
            s = SegDataSample(metainfo=meta)
            s.gt_sem_seg = PixelData(
                data=torch.randint(0, 150, (1, h, w), generator=g))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


class _Step:
    """One training step of the whole model, the way mmengine runs it."""

    def __init__(self, model, data, device):
        self.model = model.to(device).train()
        self.device = device
        self.data = model.data_preprocessor(data, True)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optim = torch.optim.AdamW(params, lr=1e-4) if params else None

    def loss(self):
        losses = self.model(**self.data, mode='loss')
        return self.model.parse_losses(losses)[0]

    def __call__(self):
        loss = self.loss()
        if loss.requires_grad:
            loss.backward()
            self.optim.step()
            self.optim.zero_grad(set_to_none=True)
        self.sync()

    def sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()


def saved_for_backward(step):
    """Bytes autograd keeps for backward in one step, each storage counted
    once, split into backbone and the rest. Parameters saved by reference
    (frozen weights a matmul needs for its input gradient) are resident
    anyway and are not counted."""
    model = step.model
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen, where = {}, {'backbone': False}
    model.backbone.register_forward_pre_hook(
        lambda *a: where.__setitem__('backbone', True))
    model.backbone.register_forward_hook(
        lambda *a: where.__setitem__('backbone', False))

    def pack(t):
        s = t.untyped_storage()
        ptr = s.data_ptr()
        if ptr not in params and ptr not in seen:
            seen[ptr] = (s.nbytes(), where['backbone'])
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step.loss()
    if loss.requires_grad:
        loss.backward()
    step.model.zero_grad(set_to_none=True)
    backbone = sum(n for n, b in seen.values() if b)
    rest = sum(n for n, b in seen.values() if not b)
    return dict(
        saved_backbone=backbone, saved_rest=rest, saved_total=backbone + rest)


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
    """Peak memory of one training step, and how far it rose above what was
    allocated just before (activations, gradients, optimizer state): from
    max_memory_allocated on a GPU; on the CPU from the resident set size of
    this (fresh, one-variant) process, which also holds the interpreter and
    libraries."""
    if step.device.type == 'cuda':
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        peak = torch.cuda.max_memory_allocated()
    else:
        with RSSPeak() as rss:
            before = rss.peak
            step()
        peak = rss.peak
    return dict(peak_bytes=peak, peak_rise_bytes=peak - before)


def step_time(step, warmup=1, repeats=3):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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
            infer_batches=(1, 4, 16),
            repeats=3,
            backbone_overrides=None,
            model_overrides=None,
            what=('params', 'saved', 'peak', 'time', 'throughput')):
    """All figures of one variant, as a flat dict."""
    device = torch.device(device)
    size = tuple(size or FAMILIES[family]['size'])
    torch.manual_seed(0)
    cfg = load_variant_config(family, variant, backbone_overrides,
                              model_overrides)
    model = build_model(cfg)
    counts = count_parameters(model)
    row = dict(
        family=family,
        variant=variant,
        device=str(device),
        batch=batch,
        size=list(size),
        params_backbone_side=counts['backbone (Swin)']['trainable'] +
        counts['side network']['trainable'],
        params_trainable=sum(c['trainable'] for c in counts.values()),
        params_total=sum(c['trainable'] + c['frozen']
                         for c in counts.values()))
    step = _Step(model, synthetic_batch(cfg, batch, size), device)
    if 'peak' in what:  # first, so no earlier step's buffers are around
        row.update(peak_memory(step))
    if 'saved' in what:
        row.update(saved_for_backward(step))
    if 'time' in what:
        row['step_time_s'] = step_time(step, repeats=repeats)
    if 'throughput' in what:
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
