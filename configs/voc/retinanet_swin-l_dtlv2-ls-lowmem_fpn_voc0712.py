_base_ = './retinanet_swin-l_dtlv2-ls_fpn_voc0712.py'
# DTLv2-LS with everything that trains checkpointed (non-reentrant, applied
# by DTLRunner): the side network and the blocks
# after the first add-back, FPN and the RetinaNet head. Same gradients, less
# memory, a slower step (docs/benchmarks.md). recompute_trunk: the frozen
# trunk too is recomputed in backward, so the side network's reads keep no
# trunk activations: the lowest memory, for a second trunk forward.
checkpointed_parts = ['backbone', 'neck', 'bbox_head']
model = dict(backbone=dict(recompute_trunk=True))
