_base_ = '../_base_/upernet_swin-l_160k_ade20k-512x512.py'
# full fine-tuning: every Swin weight trains (the recipe as is)
