"""Toy data sets in the real on-disk formats (COCO, VOC, ADE20K), written
by ``dtl-mm toy-data`` and the demo. The tests' own helpers live under
``tests/``, outside the package."""
