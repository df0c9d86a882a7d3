"""The memory / speed benchmark on tiny models."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from measure import measure

from dtl_mm.models.swin_presets import TINY_SWIN, TINY_SWIN_CHANNELS
from helpers.tool_utils import ROOT

NECK = {'model.neck.in_channels': TINY_SWIN_CHANNELS[1:]}


@pytest.mark.slow  # four models through the benchmark
def test_saved_bytes_order_fixed_dtl_petl_full():
    saved = {}
    for variant in ('full', 'fixed', 'lora', 'adapter', 'adaptformer',
                    'dtlv2-ls', 'dtlv2-ls+cp'):
        row = measure(
            'voc',
            variant,
            size=(96, 160),
            what=('saved', ),
            backbone_overrides=TINY_SWIN,
            model_overrides=NECK)
        saved[variant] = row['saved_backbone'], row['saved_total']
        assert row['saved_heads'] > 0
    total = {k: v[1] for k, v in saved.items()}
    assert saved['fixed'][0] == 0  # a frozen trunk keeps nothing
    assert total['fixed'] < total['dtlv2-ls'] < min(
        total['lora'], total['adapter'], total['adaptformer'])
    assert max(total['lora'], total['adapter'], total['adaptformer']) < \
        total['full']
    # checkpointing the late blocks keeps less still
    assert total['dtlv2-ls+cp'] < total['dtlv2-ls']


@pytest.mark.slow  # the benchmark script, end to end
def test_benchmark_script_end_to_end(tmp_path):
    out = tmp_path / 'bench'
    proc = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/benchmarks/memory_speed.py'), '--out',
        str(out), '--tiny', '--family', 'voc', '--variants', 'full',
        'dtlv2-ls', 'dtlv2-ls+cp+heads', '--scale', '0.2', '--infer-batches',
        '1', '2', '--repeats', '1'
    ],
                          capture_output=True,
                          text=True,
                          timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / 'results.json').read_text())
    rows = results['voc']
    assert [r['variant']
            for r in rows] == ['full', 'dtlv2-ls', 'dtlv2-ls+cp+heads']
    for r in rows:
        assert r['size'] == [128, 224] and r['batch'] == 2
        assert r['step_time_s'] > 0
        assert r['throughput_bs1'] > 0 and r['throughput_bs2'] > 0
        # on the CPU: model state + saved for backward
        assert r['memory_bytes'] == r['model_state_bytes'] + r['saved_total']
    assert rows[2]['saved_total'] < rows[1]['saved_total'] < \
        rows[0]['saved_total']
    md = (out / 'results.md').read_text()
    assert '| dtlv2-ls+cp+heads |' in md and 'paper #m (GB)' in md
    # the baseline row names the DTL rows that beat it on both axes (or
    # says none do), computed from the measured values
    full_row = next(ln for ln in md.splitlines() if ln.startswith('| full |'))
    beaten = [
        r['variant'] for r in rows[1:]
        if r['memory_bytes'] <= rows[0]['memory_bytes']
        and r['step_time_s'] <= rows[0]['step_time_s']
    ]
    assert full_row.split('|')[-3].strip() == (', '.join(beaten) or '**none**')
    assert (out / 'frontier.png').stat().st_size > 1000
