_base_ = './cascade-mask-rcnn_swin-b_dtlv2-ls_fpn_3x_coco.py'
# DTLv2-LS with everything that trains checkpointed (non-reentrant): the
# side network and the blocks after the first add-back, FPN and the RPN head
# (checkpointed_parts, applied by DTLRunner), and each cascade stage's RoI
# extractor + head (the checkpointed RoI head type). Same gradients, less
# memory, a slower step (docs/benchmarks.md). recompute_trunk: the frozen
# trunk too is recomputed in backward, so the side network's reads keep no
# trunk activations: the lowest memory, for a second trunk forward.
checkpointed_parts = ['backbone', 'neck', 'rpn_head']
model = dict(
    backbone=dict(recompute_trunk=True),
    roi_head=dict(type='CheckpointedCascadeRoIHead'))
