"""``DTLInferencer``: mmdet's ``DetInferencer`` or mmseg's ``MMSegInferencer``
for a dtl_mm config, which it also takes by a shipped config's name.

mmdet's and mmseg's inferencers take our configs by path, but look a bare
model name up only in their own library's model index, which has no entry
of ours; and given no checkpoint they warn and go on with random weights.
``DTLInferencer`` resolves the name the way our tools do (a path, a
shipped config's path under ``configs/``, its file name with or without
``.py``), picks the library from the config's ``default_scope``, checks
that the checkpoint was trained with that config and fits its model, and
refuses to run without one. What it returns *is* the library's inferencer
(a subclass), so everything documented for those (``__call__``'s
arguments, the output folders, ``visualizer``) holds unchanged.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config, ConfigDict

from ..checkpoint.fit_check import check_checkpoint_fits
from ..checkpoint.schemes import safe_checkpoint_schemes
from ..checkpoint.trained_config import check_trained_config
from .runner_setup import SCOPES, load_config


class DTLInferencer:
    """Inference with a dtl_mm config and a checkpoint trained with it.

    ``DTLInferencer(model, weights)`` returns a
    :class:`~dtl_mm.apis.det_inferencer.DTLDetInferencer` (an mmdet
    ``DetInferencer``) or a
    :class:`~dtl_mm.apis.seg_inferencer.DTLSegInferencer` (an mmseg
    ``MMSegInferencer``), both instances of this class.

    Args:
        model (str | Config): a config path, a shipped config's name
            (``'retinanet_swin-t_dtlv2-ls_toy-voc'``, with or without
            ``.py``, or its path under ``configs/``), or a Config.
        weights (str): the checkpoint. Required: no trained weights are
            published, and a model with random weights is never run.
        backbone_from_pretrained (str, optional): the frozen trunk file for
            a lean checkpoint whose recorded pretrained file moved; it
            replaces ``model.backbone.init_cfg.checkpoint`` and its sha256
            is checked against the checkpoint's record.
        **kwargs: the library inferencer's own arguments (``device``,
            ``palette``, ``show_progress``, ``classes``, ...).
    """

    def __new__(cls, model=None, weights=None, **kwargs):
        if cls is not DTLInferencer:
            return super().__new__(cls)
        cfg = _config_of(model)
        if cfg.get('default_scope') == 'mmdet':
            from .det_inferencer import DTLDetInferencer as task_class
        else:
            from .seg_inferencer import DTLSegInferencer as task_class
        inferencer = super().__new__(task_class)
        inferencer._resolved = (model, cfg)  # read once, by __init__
        return inferencer

    def __init__(self,
                 model=None,
                 weights: Optional[str] = None,
                 backbone_from_pretrained: Optional[str] = None,
                 **kwargs):
        resolved = self.__dict__.pop('_resolved', None)
        cfg = resolved[1] if resolved and resolved[0] is model \
            else _config_of(model)
        scope = type(self).library_scope
        if cfg.get('default_scope') != scope:
            raise ValueError(
                f'{_name(model)}: a {cfg.get("default_scope")} config, '
                f'not for {type(self).__name__} (a {scope} inferencer); '
                f'use DTLInferencer, which picks the library')
        if weights is None:
            raise ValueError(
                f'{_name(model)}: give the checkpoint to run, '
                f'weights=FILE. dtl_mm publishes no trained weights; '
                f'train the config first (dtl-mm train CONFIG, or '
                f'tools/train.py); a model with random weights is not run')
        if not osp.isfile(weights):
            raise FileNotFoundError(f'checkpoint not found: {weights}')
        if backbone_from_pretrained:
            cfg.model.backbone.init_cfg = dict(
                type='Pretrained', checkpoint=backbone_from_pretrained)
        check_trained_config(weights, cfg)
        self._weights = weights
        with safe_checkpoint_schemes():  # the library reads it by scheme
            super().__init__(cfg, weights, **kwargs)

    def _load_weights_to_model(self, model, checkpoint, cfg):
        # the library loads with strict=False: a checkpoint of another
        # model would only warn, and leave weights at random values
        check_checkpoint_fits(model, checkpoint, self._weights)
        super()._load_weights_to_model(model, checkpoint, cfg)


def _name(model) -> str:
    return getattr(model, 'filename', None) or str(model) \
        if not isinstance(model, dict) else 'the config'


def _config_of(model) -> Config:
    """The config ``model`` names, read and checked as our tools read it."""
    if isinstance(model, str):
        return load_config(model)
    if isinstance(model, (Config, ConfigDict, dict)):
        cfg = model.copy() if isinstance(model, Config) else Config(
            dict(model))
        if cfg.get('default_scope') not in SCOPES:
            raise ValueError(
                f'{_name(model)}: default_scope must be one of {SCOPES}, '
                f'got {cfg.get("default_scope")!r}')
        return cfg
    raise TypeError(f'model: a config path, a shipped config name or a '
                    f'Config, got {type(model).__name__}')
