"""The VOC metric prints the data set's class names."""
import os.path as osp

import numpy as np
import pytest

from dtl_mm.apis.runner_setup import load_config
from helpers.tool_utils import DEMO, ROOT


def test_voc_metric_prints_the_data_sets_class_names(monkeypatch):
    from mmdet.evaluation.functional import mean_ap
    from mmengine.registry import init_default_scope

    from dtl_mm.evaluation.metrics.voc_class_names_metric import \
        VOCClassNamesMetric
    printed = []
    monkeypatch.setattr(mean_ap, 'print_log',
                        lambda msg, *a, **k: printed.append(str(msg)))
    cfg = load_config(osp.join(ROOT, DEMO['voc']))
    assert cfg.val_evaluator.type == 'VOCClassNamesMetric'
    init_default_scope('mmdet')
    metric = VOCClassNamesMetric(metric='mAP', eval_mode='11points')
    classes = ('square', 'circle', 'triangle')
    metric.dataset_meta = dict(classes=classes, dataset_type='VOC2007')
    box = np.array([[10, 10, 50, 50]], dtype=np.float32)
    gt = dict(
        labels=np.array([0]),
        bboxes=box,
        bboxes_ignore=np.zeros((0, 4), np.float32),
        labels_ignore=np.zeros(0, np.int64))
    pred = [np.hstack([box, [[0.9]]]).astype(np.float32)] + \
        [np.zeros((0, 5), np.float32)] * 2
    result = metric.compute_metrics([(gt, pred)])
    assert result['mAP'] == pytest.approx(1.0)
    table = '\n'.join(printed)
    assert all(c in table for c in classes) and 'aeroplane' not in table
    # the dataset_type is restored after the table
    assert metric.dataset_meta['dataset_type'] == 'VOC2007'
