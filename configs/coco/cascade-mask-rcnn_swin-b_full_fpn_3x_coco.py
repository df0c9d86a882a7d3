_base_ = '../_base_/cascade-mask-rcnn_swin-b_fpn_3x_coco.py'
# full fine-tuning: every Swin weight trains (the recipe as is)
