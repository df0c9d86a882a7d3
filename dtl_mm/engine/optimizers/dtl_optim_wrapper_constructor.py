"""Optimizer constructor that says once, not per tensor, what stays frozen."""
import logging

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


class _DropFrozenNotices(logging.Filter):

    def __init__(self):
        super().__init__()
        self.count = 0

    def filter(self, record):
        if 'is skipped since its requires_grad=False' in record.getMessage():
            self.count += 1
            return False
        return True


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DTLOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor (paramwise_cfg and all). Frozen
    parameters are left out of the optimizer exactly as there, but instead of
    one warning per frozen tensor (hundreds for a Swin) it logs one line."""

    def __call__(self, model):
        logger = MMLogger.get_current_instance()
        quiet = _DropFrozenNotices()
        logger.addFilter(quiet)
        try:
            wrapper = super().__call__(model)
        finally:
            logger.removeFilter(quiet)
        if quiet.count:
            print_log(
                f'optimizer: {quiet.count} frozen parameter tensors '
                f'left out',
                logger='current')
        return wrapper
