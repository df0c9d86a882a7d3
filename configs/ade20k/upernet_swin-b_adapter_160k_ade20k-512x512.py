_base_ = './upernet_swin-l_adapter_160k_ade20k-512x512.py'
model = dict(backbone={{_base_.swin_b}},
             decode_head=dict(in_channels={{_base_.swin_b_channels}}),
             auxiliary_head=dict(in_channels=512))
