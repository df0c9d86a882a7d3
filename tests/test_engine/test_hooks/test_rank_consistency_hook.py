"""RankConsistencyHook: trainable weights checked equal on all ranks."""
import pytest
import torch

from dtl_mm.engine.hooks import RankConsistencyHook
from helpers.hook_utils import FakeRunner


def test_rank_consistency_every_n_iterations(tmp_path, monkeypatch):
    import mmengine.dist as mdist
    gathered = []
    monkeypatch.setattr(mdist, 'get_world_size', lambda: 2)
    monkeypatch.setattr(mdist, 'all_gather',
                        lambda t: gathered.append(t) or [t, t.clone()])
    hook = RankConsistencyHook(interval=3)
    runner = FakeRunner(tmp_path, torch.nn.Linear(2, 2))
    for _ in range(7):
        runner.step(hook, 1.)
    hook.after_train_epoch(runner)
    assert runner.warnings == [
        'trainable weights identical on all 2 ranks after iteration 3',
        'trainable weights identical on all 2 ranks after iteration 6',
        'trainable weights identical on all 2 ranks after epoch 1'
    ]
    monkeypatch.setattr(mdist, 'all_gather', lambda t: [t, t + 1e-7])
    with pytest.raises(
            RuntimeError,
            match='trainable weights differ '
            'between ranks after iteration 9'):
        for _ in range(3):
            runner.step(hook, 1.)
