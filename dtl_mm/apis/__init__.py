"""What tools and users call: inference, multi-task serving, runner set-up."""
from .dtl_inferencer import DTLInferencer
from .inferencer import MultiTaskInferencer
from .multitask import MultiTaskModel

__all__ = ['DTLInferencer', 'MultiTaskInferencer', 'MultiTaskModel']
