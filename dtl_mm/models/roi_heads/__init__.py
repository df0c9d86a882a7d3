"""mmdet RoI heads whose training forward is checkpointed."""
from .checkpointed_roi_heads import (CheckpointedCascadeRoIHead,
                                     CheckpointedStandardRoIHead)

__all__ = ['CheckpointedCascadeRoIHead', 'CheckpointedStandardRoIHead']
