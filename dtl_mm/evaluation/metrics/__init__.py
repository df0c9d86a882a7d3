from .voc_class_names_metric import VOCClassNamesMetric

__all__ = ['VOCClassNamesMetric']
