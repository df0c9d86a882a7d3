"""LoRA on a frozen mmpretrain ViT: the PETL baseline of the ViT configs.

mmpretrain's ViT computes q, k and v with one ``attn.qkv`` Linear per block,
so LoRA adds ``x A C * alpha / rank`` to its output through a forward hook
(``petl_baselines.LoRA``), as on the Swin: every ViT weight keeps its
mmpretrain key, so the pretrained loader, lean checkpoints and mmseg's test
tool see a plain ViT. mmpretrain's own ``LoRAModel`` is not used: it
replaces the Linear layers (renaming their weights to
``original_layer.*``) and drops frozen weights from the state dict, which
breaks the all-or-nothing pretrained loading and the trunk fingerprint.
The trunk runs with autograd: gradients reach every block's LoRA, so every
block keeps its activations.
"""
from contextlib import nullcontext

from mmengine.registry import MODELS

from .mmpretrain_vit import PretrainedMMPretrainViT
from .petl_baselines import LoRA


@MODELS.register_module()
class LoRAMMPretrainViT(PretrainedMMPretrainViT):
    """A frozen mmpretrain ViT with LoRA on every block's qkv projection.

    Args:
        rank (int): rank of each LoRA update.
        alpha (float, optional): the update is scaled by alpha / rank
            (default: alpha = rank, a scale of 1).
        **kwargs: :class:`PretrainedMMPretrainViT` arguments (always
            frozen).
    """

    def __init__(self, rank: int = 64, alpha: float = None, **kwargs):
        if not isinstance(rank, int) or rank <= 0:
            raise ValueError(f'LoRA option `rank` must be > 0, got {rank}')
        super().__init__(
            frozen=True, **self.frozen_only(type(self).__name__, kwargs))
        self.lora_rank, self.lora_scale = rank, (alpha or rank) / rank
        for layer in self.vit.layers:
            attn = layer.attn
            dim = attn.qkv.in_features
            attn.petl_lora = LoRA(dim, rank, attn.qkv.out_features,
                                  self.lora_scale)
            attn.qkv.register_forward_hook(attn.petl_lora.add_to_output)

    def trunk_context(self):
        return nullcontext()
