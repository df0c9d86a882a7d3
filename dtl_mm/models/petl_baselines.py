"""PETL baselines over the same frozen mmdet Swin: LoRA, Adapter, AdaptFormer.

Each adds small modules *inside* the blocks, attached with forward hooks so
that every Swin weight keeps its key (the pretrained loader and checkpoints
see a plain Swin). Their parameters are named ``...petl_*``. Unlike DTL,
gradients must flow through every block, so the trunk runs with autograd:
that is the memory cost these methods pay and DTL avoids.

Sizes follow the paper's baselines (Tables 8-10): rank / bottleneck 64 for
LoRA and Adapter, 128 for AdaptFormer give 3.1 M trainable parameters on
Swin-B and 4.6 M on Swin-L.

mmpretrain's ``LoRAModel`` wraps any module, but it rebuilds the wrapped
model from mmpretrain's registry, replaces the Linear layers (renaming their
weights to ``original_layer.*``) and strips frozen weights from the state
dict, which breaks our pretrained loading and the checkpoints mmdet/mmseg
test tools expect; a hook-based LoRA is shorter than working around that.
"""
from contextlib import nullcontext

from mmengine.registry import MODELS
from torch import nn

from .side_network import LowRankMap
from .swin_wrapper import PretrainedSwinTransformer


class LoRA(LowRankMap):
    """x A C * scale added to a Linear's output (A kaiming, C zero)."""

    def __init__(self, dim, rank, out_dim, scale):
        super().__init__(dim, rank, out_dim)
        self.scale = scale

    def add_to_output(self, module, args, out):
        # a bound method, not a closure: deepcopy (EMA, TTA) rebinds it
        return out + self.scale * self(args[0])


class Bottleneck(nn.Module):
    """x -> up(act(down(x))) * scale, up zero-initialised (identity at
    init)."""

    def __init__(self, dim, hidden, scale=1.0):
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.up = nn.Linear(hidden, dim)
        self.scale = scale
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return self.up(self.act(self.down(x))) * self.scale

    def residual(self, module, args, out):
        """Houlsby: the sub-layer output plus the adapter of it."""
        return out + self(out)

    def parallel(self, module, args, kwargs, out):
        """AdaptFormer: beside the FFN, fed with its residual input."""
        return out + self(kwargs['identity'])


class _FrozenSwinWithPETL(PretrainedSwinTransformer):
    """Frozen Swin whose trunk runs *with* autograd (the PETL modules sit
    inside every block)."""

    def __init__(self, **kwargs):
        super().__init__(
            frozen=True, **self.frozen_only(type(self).__name__, kwargs))

    def trunk_context(self):
        return nullcontext()

    def attach_to_blocks(self, attach):
        """Calls ``attach(block, width)`` for every Swin block; subclasses
        do so once their own options are set."""
        for stage in self.swin.stages:
            for block in stage.blocks:
                attach(block, block.attn.w_msa.qkv.in_features)


@MODELS.register_module()
class LoRASwinTransformer(_FrozenSwinWithPETL):
    """LoRA (Hu et al.) on every block's fused qkv projection."""

    def __init__(self, rank: int = 64, alpha: float = None, **kwargs):
        if not isinstance(rank, int) or rank <= 0:
            raise ValueError(f'LoRA option `rank` must be > 0, got {rank}')
        super().__init__(**kwargs)
        self.lora_rank, self.lora_scale = rank, (alpha or rank) / rank
        self.attach_to_blocks(self.attach)

    def attach(self, block, dim):
        w_msa = block.attn.w_msa
        w_msa.petl_lora = LoRA(dim, self.lora_rank, 3 * dim, self.lora_scale)
        w_msa.qkv.register_forward_hook(w_msa.petl_lora.add_to_output)


@MODELS.register_module()
class AdapterSwinTransformer(_FrozenSwinWithPETL):
    """Houlsby adapters: a residual bottleneck after attention and after the
    MLP of every block."""

    def __init__(self, bottleneck: int = 64, **kwargs):
        if not isinstance(bottleneck, int) or bottleneck <= 0:
            raise ValueError('Adapter option `bottleneck` must be > 0')
        super().__init__(**kwargs)
        self.bottleneck = bottleneck
        self.attach_to_blocks(self.attach)

    def attach(self, block, dim):
        block.petl_adapter_attn = Bottleneck(dim, self.bottleneck)
        block.petl_adapter_mlp = Bottleneck(dim, self.bottleneck)
        block.attn.register_forward_hook(block.petl_adapter_attn.residual)
        block.ffn.layers.register_forward_hook(block.petl_adapter_mlp.residual)


@MODELS.register_module()
class AdaptFormerSwinTransformer(_FrozenSwinWithPETL):
    """AdaptFormer: a scaled bottleneck in parallel with every block's MLP:
    x + MLP(LN(x)) + s * B(x)."""

    def __init__(self, bottleneck: int = 128, scale: float = 0.1, **kwargs):
        if not isinstance(bottleneck, int) or bottleneck <= 0:
            raise ValueError('AdaptFormer option `bottleneck` must be > 0')
        super().__init__(**kwargs)
        self.bottleneck, self.adapter_scale = bottleneck, scale
        self.attach_to_blocks(self.attach)

    def attach(self, block, dim):
        block.petl_adaptformer = Bottleneck(dim, self.bottleneck,
                                            self.adapter_scale)
        block.ffn.register_forward_hook(
            block.petl_adaptformer.parallel, with_kwargs=True)
