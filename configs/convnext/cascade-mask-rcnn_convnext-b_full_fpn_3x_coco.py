_base_ = '../_base_/cascade-mask-rcnn_convnext-b_fpn_3x_coco.py'
# full fine-tuning: every ConvNeXt weight trains (the recipe as is)
