_base_ = '../_base_/upernet_convnext-b_160k_ade20k-512x512.py'
# full fine-tuning: every ConvNeXt weight trains (the recipe as is)
