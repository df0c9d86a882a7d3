_base_ = '../_base_/upernet_dinov2-l_160k_ade20k-512x512.py'
# LoRA (rank 64, as the Swin baselines) on every block's qkv projection of
# the frozen ViT
model = dict(backbone=dict(type='LoRAMMPretrainViT', rank=64))
