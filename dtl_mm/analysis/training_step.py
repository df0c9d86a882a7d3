"""One training step of a detector or segmentor built from its config, on a
synthetic batch with ground truth: what the memory estimate and the
benchmarks run."""
from contextlib import nullcontext

import torch


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


class TrainingStep:
    """One training step of the whole model, the way mmengine runs it:
    the data preprocessor's output, the loss, backward, an AdamW step.

    ``amp``: None (fp32) or a dtype the forward runs under autocast in, as
    mmengine's ``AmpOptimWrapper`` runs it (its weights stay fp32).
    """

    def __init__(self, model, data, device, amp=None):
        self.model = model.to(device).train()
        self.device = torch.device(device)
        self.amp = amp
        self.data = model.data_preprocessor(data, True)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optim = torch.optim.AdamW(params, lr=1e-4) if params else None

    def loss(self):
        amp = nullcontext() if self.amp is None else torch.autocast(
            self.device.type, dtype=self.amp)
        with amp:
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
