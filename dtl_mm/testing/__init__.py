"""Support for the tests and the demo: toy data sets in the real on-disk
formats, tiny models."""
