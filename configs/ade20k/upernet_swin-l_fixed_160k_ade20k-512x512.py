_base_ = '../_base_/upernet_swin-l_160k_ade20k-512x512.py'
# frozen Swin: only neck and heads train
model = dict(backbone=dict(frozen=True))
