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
from dtl_mm.apis.runner_setup import build_model
from dtl_mm.models.recompute import enable_activation_checkpointing
from dtl_mm.utils.param_count import count_parameters

# the repository root: the configs are read from its configs/ folder
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The rows of the frontier: a base config, then what is checkpointed:
# '+cp' the backbone (with_cp=True: blocks autograd goes through, and a
# side network), '+sel' the backbone selectively (with_cp='selective'),
# '+heads' the neck and heads (the lowmem config's activation_checkpointing
# list without its backbone).
VARIANTS = ('full', 'full+cp', 'full+cp+heads', 'adaptformer',
            'adaptformer+cp', 'fixed', 'fixed+heads', 'dtlv2-ls',
            'dtlv2-ls+sel', 'dtlv2-ls+cp', 'dtlv2-ls+sel+heads',
            'dtlv2-ls+cp+heads')
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
PAPER_FAMILIES = tuple(f for f in FAMILIES if 'title' not in FAMILIES[f])


def describe(family):
    """A family's heading: the paper's table, or its own title."""
    return FAMILIES[family].get('title') or paper_results.describe(family)


def parse_variant(variant):
    """'dtlv2-ls+sel+heads' -> ('dtlv2-ls', 'selective', True)."""
    base, *extras = variant.split('+')
    unknown = set(extras) - set(CP_SUFFIXES) - {'heads'}
    if base not in BASE_VARIANTS or unknown or len(
            set(extras)) < len(extras) or {'cp', 'sel'} <= set(extras):
        raise ValueError(
            f'variant {variant!r}: a variant of {BASE_VARIANTS}, then '
            f'optionally +cp or +sel, then optionally +heads')
    cp = next((CP_SUFFIXES[e] for e in extras if e in CP_SUFFIXES), False)
    return base, cp, 'heads' in extras


def checkpointed_heads(family):
    """The neck and heads the family's lowmem config checkpoints."""
    cfg = Config.fromfile(
        osp.join(ROOT, FAMILIES[family]['config'].format('dtlv2-ls-lowmem')))
    return [m for m in cfg.activation_checkpointing if m != 'backbone']


def load_variant_config(family,
                        variant,
                        backbone_overrides=None,
                        model_overrides=None):
    """The shipped config of the variant's base, with its backbone
    checkpointing set; random weights (they measure the same)."""
    base, cp, _ = parse_variant(variant)
    cfg = Config.fromfile(
        osp.join(ROOT, FAMILIES[family]['config'].format(base)))
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.with_cp = cp
    if backbone_overrides:
        cfg.model.backbone.update(backbone_overrides)
    if model_overrides:
        cfg.merge_from_dict(model_overrides)
    return cfg


def num_classes(model_cfg):
    """The number of classes the heads of a detector / segmentor predict."""
    for head in ('decode_head', 'bbox_head'):
        if model_cfg.get(head):
            return model_cfg[head].num_classes
    heads = model_cfg.roi_head.bbox_head
    return (heads[0] if isinstance(heads, list) else heads).num_classes


def synthetic_batch(cfg, batch, size, seed=0):
    """Raw inputs + data samples with ground truth, as a data loader gives
    them; the same for every variant of a family."""
    g = torch.Generator().manual_seed(seed)
    classes = num_classes(cfg.model)
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
                bboxes=boxes,
                labels=torch.randint(0, classes, (n, ), generator=g))
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
                data=torch.randint(0, classes, (1, h, w), generator=g))
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


class _Where:
    """Which part of the model runs now: 'backbone', 'side' (a side
    network's steps, checkpointed regions included) or 'heads' (neck,
    heads, losses: everything else)."""

    def __init__(self, model):
        self.now = 'heads'
        self.handles = [
            model.backbone.register_forward_pre_hook(
                lambda *a: self.enter('backbone')),
            model.backbone.register_forward_hook(
                lambda *a: self.enter('heads'))
        ]
        csn = getattr(model.backbone, 'csn', None)
        self.csn, self.csn_methods = csn, {}
        for name in ('read', 'fuse', 'bridge', 'state_from_trunk'):
            if csn is not None:
                self.csn_methods[name] = getattr(csn, name)
                setattr(csn, name, self.in_side(getattr(csn, name)))

    def enter(self, part):
        self.now = part

    def in_side(self, method):

        def run(*args, **kwargs):
            before, self.now = self.now, 'side'
            try:
                return method(*args, **kwargs)
            finally:
                self.now = before

        return run

    def remove(self):
        for h in self.handles:
            h.remove()
        for name in self.csn_methods:
            delattr(self.csn, name)  # the class's method again


def _storages(x):
    if isinstance(x, torch.Tensor):
        yield x.untyped_storage()
    elif isinstance(x, (tuple, list)):
        for t in x:
            yield from _storages(t)


class KeptBytes:
    """Inside the block, counts what a forward keeps for backward: storages
    autograd saves (checkpointed regions' inputs included) and outputs that
    selective checkpointing caches, each storage once, by ``where()``.

    ``exclude``: storages not to count (parameters: saved by reference,
    resident anyway).
    """

    def __init__(self, exclude=(), where=lambda: 'all'):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.where = where
        self.seen = {}  # data_ptr -> (bytes, part)

    def keep(self, storage):
        ptr = storage.data_ptr()
        if ptr not in self.exclude and ptr not in self.seen:
            self.seen[ptr] = (storage.nbytes(), self.where())

    def pack(self, t):
        self.keep(t.untyped_storage())
        return t

    def __enter__(self):
        from dtl_mm.models import recompute
        self.recompute, self.policy = recompute, recompute.selective_policy
        policy = self.policy

        from torch.utils.checkpoint import CheckpointPolicy  # torch >= 2.4

        def counting_policy(ctx, op, *args, **kwargs):
            decision = policy(ctx, op, *args, **kwargs)
            if decision == CheckpointPolicy.MUST_SAVE and \
                    not ctx.is_recompute:
                for storage in _storages(ctx.op_output):
                    self.keep(storage)
            return decision

        recompute.selective_policy = counting_policy
        self.hooks = torch.autograd.graph.saved_tensors_hooks(
            self.pack, lambda t: t)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self.hooks.__exit__(*exc)
        self.recompute.selective_policy = self.policy

    def total(self, part=None):
        return sum(n for n, p in self.seen.values()
                   if part is None or p == part)


def saved_for_backward(step):
    """Bytes one training step keeps for backward (:class:`KeptBytes`),
    split into backbone / side network / neck+heads."""
    model = step.model
    where = _Where(model)
    try:
        with KeptBytes(model.parameters(), lambda: where.now) as kept:
            loss = step.loss()
        if loss.requires_grad:
            loss.backward()
    finally:
        where.remove()
    step.model.zero_grad(set_to_none=True)
    return dict(
        saved_backbone=kept.total('backbone'),
        saved_side=kept.total('side'),
        saved_heads=kept.total('heads'),
        saved_total=kept.total())


def model_state_bytes(model):
    """Weights and buffers, plus a gradient and AdamW's two moments for
    every trainable weight: what training keeps besides activations."""
    weights = sum(t.numel() * t.element_size()
                  for t in [*model.parameters(), *model.buffers()])
    trainable = sum(p.numel() * p.element_size() for p in model.parameters()
                    if p.requires_grad)
    return weights + 3 * trainable


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
            what=('params', 'saved', 'peak', 'time', 'throughput')):
    """All figures of one variant, as a flat dict. ``memory_bytes`` is the
    GPU peak on a GPU and model state + saved for backward on the CPU."""
    device = torch.device(device)
    size = tuple(size or FAMILIES[family]['size'])
    torch.manual_seed(0)
    cfg = load_variant_config(family, variant, backbone_overrides,
                              model_overrides)
    model = build_model(cfg)
    heads = checkpointed_heads(family) if parse_variant(variant)[2] else []
    enable_activation_checkpointing(model, heads)
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
        model_state_bytes=model_state_bytes(model))
    step = _Step(model, synthetic_batch(cfg, batch, size), device)
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
