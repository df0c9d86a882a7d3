_base_ = '../_base_/upernet_vit-b_160k_ade20k-512x512.py'
# full fine-tuning: every ViT weight trains (the recipe as is)
