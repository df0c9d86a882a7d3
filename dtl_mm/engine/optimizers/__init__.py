from .dtl_optim_wrapper_constructor import DTLOptimWrapperConstructor

__all__ = ['DTLOptimWrapperConstructor']
