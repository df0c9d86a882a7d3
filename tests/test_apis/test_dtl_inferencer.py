"""DTLInferencer: mmdet's / mmseg's own inferencer for a shipped config
named as in the model index, refusing to run without a checkpoint."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.apis import DetInferencer
from mmseg.apis import MMSegInferencer

from dtl_mm.apis import DTLInferencer
from dtl_mm.apis.det_inferencer import DTLDetInferencer
from dtl_mm.checkpoint.safe_load import CheckpointError
from helpers.multitask_utils import images, voc_and_ade20k_workspace
from helpers.tool_utils import DEMO, ROOT

VOC_NAME = 'retinanet_swin-t_dtlv2-ls_toy-voc'
ADE_NAME = 'upernet_swin-t_dtlv2-ls_toy-ade20k'


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return voc_and_ade20k_workspace(tmp_path_factory.mktemp('dtl_infer'))


@pytest.mark.parametrize(
    'name', [VOC_NAME, VOC_NAME + '.py', 'demo/' + VOC_NAME + '.py'])
def test_a_shipped_detector_by_name_is_mmdets_inferencer(workspace, name):
    ckpt = str(workspace / 'voc.pth')
    inf = DTLInferencer(name, ckpt, device='cpu', show_progress=False)
    assert isinstance(inf, DetInferencer) and isinstance(inf, DTLInferencer)
    # the same predictions as mmdet's own inferencer given the config path
    img = images(workspace)[0]
    ours = inf(img, return_datasamples=True)['predictions'][0]
    theirs = DetInferencer(
        osp.join(ROOT, DEMO['voc']), ckpt, device='cpu', show_progress=False)(
            img, return_datasamples=True)['predictions'][0]
    assert len(ours.pred_instances) > 0
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(ours.pred_instances[key],
                           theirs.pred_instances[key])


def test_a_shipped_segmentor_by_name_draws_the_checkpoints_classes(
        workspace, tmp_path):
    inf = DTLInferencer(ADE_NAME, str(workspace / 'ade20k.pth'), device='cpu')
    assert isinstance(inf, MMSegInferencer)
    classes = inf.model.dataset_meta['classes']
    assert inf.visualizer.dataset_meta['classes'] == classes
    inf(images(workspace)[:2], out_dir=str(tmp_path / 'out'))
    assert len(list((tmp_path / 'out' / 'vis').iterdir())) == 2


def test_no_checkpoint_is_refused_not_run_with_random_weights():
    with pytest.raises(
            ValueError,
            match='give the checkpoint to run.*'
            'publishes no trained weights'):
        DTLInferencer(VOC_NAME)


def test_bad_names_and_files_are_named(workspace):
    with pytest.raises(FileNotFoundError, match='checkpoint not found: x.pth'):
        DTLInferencer(VOC_NAME, 'x.pth')
    with pytest.raises(
            FileNotFoundError,
            match='no_such_model: no such '
            'config file, nor a config shipped'):
        DTLInferencer('no_such_model', str(workspace / 'voc.pth'))
    with pytest.raises(
            ValueError, match='a mmseg config, not for '
            'DTLDetInferencer'):
        DTLDetInferencer(ADE_NAME, str(workspace / 'ade20k.pth'))


def test_a_checkpoint_of_another_config_is_refused(workspace):
    with pytest.raises(
            CheckpointError,
            match='voc.pth does not fit this '
            'model.*weight.*missing'):
        DTLInferencer(ADE_NAME, str(workspace / 'voc.pth'))


def test_mmdets_own_inferencer_does_not_know_our_names(workspace):
    """What the README says: mmdet looks a bare name up in its own model
    index only."""
    with pytest.raises(ValueError, match='Cannot find model'):
        DetInferencer(VOC_NAME, str(workspace / 'voc.pth'), device='cpu')


def test_predictions_hold_no_nan(workspace):
    inf = DTLInferencer(
        VOC_NAME,
        str(workspace / 'voc.pth'),
        device='cpu',
        show_progress=False)
    pred = inf(images(workspace)[1], return_datasamples=True)
    assert np.isfinite(
        pred['predictions'][0].pred_instances.scores.numpy()).all()
