_base_ = './cascade-mask-rcnn_swin-b_dtlv2-ls_fpn_3x_coco.py'
# DTLv2-LS with everything that trains checkpointed (non-reentrant, applied
# by dtl_mm's ActivationCheckpointingHook): the side network and the blocks
# after the first add-back, FPN, the RPN head, and each cascade stage's RoI
# extractor + head. Same gradients, less memory, a slower step
# (docs/benchmarks.md). recompute_trunk: the frozen trunk too is recomputed
# in backward, so the side network's reads keep no trunk activations: the
# lowest memory, for a second trunk forward.
activation_checkpointing = ['backbone', 'neck', 'rpn_head', 'roi_head']
model = dict(backbone=dict(recompute_trunk=True))
