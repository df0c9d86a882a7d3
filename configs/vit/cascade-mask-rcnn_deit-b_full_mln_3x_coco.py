_base_ = '../_base_/cascade-mask-rcnn_deit-b_mln_3x_coco.py'
# full fine-tuning: every ViT weight trains (the recipe as is)
