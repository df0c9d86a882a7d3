"""LiveBytes counts what a step keeps alive, each storage once."""
import torch

from dtl_mm.analysis.live_memory import LiveBytes

MB = 1 << 20


def test_counts_new_storages_once_and_frees_them():
    resident = torch.zeros(1 << 20)  # 4 MB the caller already has
    with LiveBytes([resident]) as live:
        a = torch.ones(1 << 20)  # 4 MB
        view = a[:1 << 19]  # a view: no new storage
        b = resident.view(2, -1)  # a view of a resident storage
        assert live.alive() == 4 * MB
        c = a * 2  # 4 MB more
        assert live.alive() == 8 * MB
        del a, view, b
        assert live.alive() == 4 * MB  # a and its view freed
        del c
    assert live.peak == 8 * MB


def test_a_freed_storage_leaves_the_count():
    with LiveBytes() as live:
        x = torch.ones(1 << 18)  # 1 MB
        y = x + 1  # 1 MB
        del x
        assert live.alive() == 1 * MB
        z = y + 1
        del y
        assert live.alive() == 1 * MB
        del z
        assert live.alive() == 0
    assert live.peak == 2 * MB


def test_backward_keeps_what_autograd_saves_and_the_gradients():
    """Two linear layers with a GELU between: forward keeps the GELU's
    input and the second layer's input; backward adds the gradients."""
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(256, 1024), torch.nn.Linear(1024, 256)
    x = torch.randn(512, 256)
    params = [*lin1.parameters(), *lin2.parameters()]
    with LiveBytes([*params, x]) as live:
        live.phase('forward')
        h = lin1(x)
        y = lin2(torch.nn.functional.gelu(h)).sum()
        del h
        kept = live.alive()
        live.phase('backward')
        y.backward()
    hidden = 512 * 1024 * 4
    # the GELU's input and output (the second layer's input) and the loss
    assert 2 * hidden <= kept <= 2 * hidden + 512 * 256 * 4 + 64
    grads = sum(p.numel() * 4 for p in params)
    assert live.peaks['backward'] >= grads
    assert live.peak >= kept
