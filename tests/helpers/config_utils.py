"""The ViT demo configs."""

VIT_DEMO = {
    'ade20k': 'configs/demo/upernet_vit-t_dtlv2-ls_toy-ade20k.py',
    'coco': 'configs/demo/cascade-mask-rcnn_vit-t_dtlv2-ls_toy-coco.py',
}
