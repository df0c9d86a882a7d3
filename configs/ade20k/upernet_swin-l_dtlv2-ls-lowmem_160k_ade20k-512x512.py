_base_ = './upernet_swin-l_dtlv2-ls_160k_ade20k-512x512.py'
# DTLv2-LS with everything that trains checkpointed (non-reentrant, applied
# by DTLRunner): the side network and the blocks
# after the first add-back, and the decode and auxiliary heads with their
# losses (so the full-resolution logits are not kept). Same gradients, less
# memory, a slower step (docs/benchmarks.md). recompute_trunk: the frozen
# trunk too is recomputed in backward, so the side network's reads keep no
# trunk activations: the lowest memory, for a second trunk forward.
checkpointed_parts = ['backbone', 'decode_head', 'auxiliary_head']
model = dict(backbone=dict(recompute_trunk=True))
