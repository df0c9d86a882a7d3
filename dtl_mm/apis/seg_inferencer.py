"""mmseg's ``MMSegInferencer`` for dtl_mm configs (see
:mod:`.dtl_inferencer`)."""
from mmseg.apis import MMSegInferencer

from .dtl_inferencer import DTLInferencer


class DTLSegInferencer(DTLInferencer, MMSegInferencer):
    """``MMSegInferencer`` that takes a shipped dtl_mm config by name and
    refuses to run without a checkpoint trained with its config."""
    library_scope = 'mmseg'

    def __init__(self, model=None, weights=None, show_progress=True, **kwargs):
        super().__init__(model, weights, **kwargs)
        self.show_progress = show_progress  # MMSegInferencer takes no such
        if not any(
                kwargs.get(k) for k in ('classes', 'palette', 'dataset_name')):
            # draw with the checkpoint's classes and palette:
            # MMSegInferencer sets them only inside its own visualize()
            self.visualizer.set_dataset_meta(**self.model.dataset_meta)
