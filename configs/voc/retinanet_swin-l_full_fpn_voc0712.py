_base_ = '../_base_/retinanet_swin-l_fpn_voc0712.py'
# full fine-tuning: every Swin weight trains (the recipe as is)
