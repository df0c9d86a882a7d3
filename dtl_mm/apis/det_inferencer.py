"""mmdet's ``DetInferencer`` for dtl_mm configs (see
:mod:`.dtl_inferencer`)."""
from mmdet.apis import DetInferencer

from .dtl_inferencer import DTLInferencer


class DTLDetInferencer(DTLInferencer, DetInferencer):
    """``DetInferencer`` that takes a shipped dtl_mm config by name and
    refuses to run without a checkpoint trained with its config."""
    library_scope = 'mmdet'
