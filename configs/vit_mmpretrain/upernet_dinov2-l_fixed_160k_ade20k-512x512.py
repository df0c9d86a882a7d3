_base_ = '../_base_/upernet_dinov2-l_160k_ade20k-512x512.py'
# frozen ViT: only neck and heads train
model = dict(backbone=dict(frozen=True))
