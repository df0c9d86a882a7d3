"""Helpers the tests share: tiny models, tool runs, crafted checkpoints.

They live beside the tests, not in the package: nothing here ships in the
wheel. ``tests/`` is on ``sys.path`` (pytest puts the directory of the
rootdir ``conftest.py`` there), so the tests import ``helpers.<module>``.
"""
