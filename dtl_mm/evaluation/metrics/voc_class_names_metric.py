"""mmdet's VOC metric, printing the data set's own class names.

mmdet's ``VOCMetric`` labels its per-class table with VOC's 20 class names
whenever the data set is a ``VOCDataset`` of a VOC2007 / VOC2012 folder,
even when the config names other classes (a custom data set in VOC
layout): the table then puts 'aeroplane' on the row of the first custom
class. The numbers are right; the names are not.
"""
from mmdet.datasets import VOCDataset
from mmdet.evaluation import VOCMetric
from mmdet.registry import METRICS


@METRICS.register_module()
class VOCClassNamesMetric(VOCMetric):
    """``VOCMetric`` whose table names the data set's classes (the same
    arguments; the same mAP)."""

    def compute_metrics(self, results: list) -> dict:
        meta = self.dataset_meta
        voc_names = tuple(VOCDataset.METAINFO['classes'])
        if tuple(meta.get('classes') or ()) == voc_names:
            return super().compute_metrics(results)
        # without a VOC dataset_type mmdet labels the rows with
        # meta['classes'] (the type only picks the printed names)
        self._dataset_meta = dict(meta, dataset_type=None)
        try:
            return super().compute_metrics(results)
        finally:
            self._dataset_meta = meta
