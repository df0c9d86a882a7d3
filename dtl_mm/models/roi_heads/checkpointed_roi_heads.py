"""mmdet's RoI heads with each stage's RoI extractor and head checkpointed.

Selected by ``type`` in a config (the COCO low-memory configs do), with the
arguments of the library's own head unchanged. In training each stage's
RoI feature extraction and box (mask) head run as one non-reentrant
checkpointed region: backward recomputes them from the FPN levels (kept
anyway) and the RoIs, so neither the RoI features nor the heads' inner
activations are kept. Wrapping the extractor and the head separately keeps
more: each head would keep its RoI features as its region's input
(``tools/benchmarks/head_policies.py``). In evaluation they run as they
are.
"""
from mmdet.models.roi_heads import CascadeRoIHead, StandardRoIHead
from mmengine.registry import MODELS

from ..recompute import recompute_module_call


class RoIForwardCheckpointing:
    """Mixin for an mmdet RoI head: ``_bbox_forward`` and ``_mask_forward``
    (where a mask head exists) as checkpointed regions in training. These
    are the two methods mmdet's RoI heads route every RoI forward through,
    in ``loss`` and ``predict`` alike; their signature differs between
    head types, so the arguments pass through as they are."""

    checkpointed = True  # for enable_activation_checkpointing's log

    def _bbox_forward(self, *args, **kwargs):
        return recompute_module_call(self,
                                     super()._bbox_forward, *args, **kwargs)

    def _mask_forward(self, *args, **kwargs):
        return recompute_module_call(self,
                                     super()._mask_forward, *args, **kwargs)


@MODELS.register_module()
class CheckpointedCascadeRoIHead(RoIForwardCheckpointing, CascadeRoIHead):
    """mmdet's ``CascadeRoIHead`` (Cascade (Mask) R-CNN), each stage's RoI
    extractor + box head and RoI extractor + mask head checkpointed in
    training."""


@MODELS.register_module()
class CheckpointedStandardRoIHead(RoIForwardCheckpointing, StandardRoIHead):
    """mmdet's ``StandardRoIHead`` (Faster / Mask R-CNN), its RoI extractor
    + box head and RoI extractor + mask head checkpointed in training."""
