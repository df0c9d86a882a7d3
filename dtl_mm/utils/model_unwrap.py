"""The model inside mmengine's distributed wrappers."""
from mmengine.model import is_model_wrapper


def bare_model(model):
    """The model a DDP / FSDP wrapper holds, or ``model`` when unwrapped."""
    return model.module if is_model_wrapper(model) else model
