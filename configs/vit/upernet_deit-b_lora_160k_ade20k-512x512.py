_base_ = '../_base_/upernet_deit-b_160k_ade20k-512x512.py'
# PETL baseline: LoRA (rank 64) on every block's qkv projection
model = dict(backbone=dict(type='LoRAVisionTransformer'))
