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


def run_script(name, *args):
    """A script of tools/benchmarks, as its users run it."""
    return subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools/benchmarks', name), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=osp.join(ROOT, 'tools', 'benchmarks')))


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


def test_memory_prediction_holds_each_family_out_of_its_own_fit():
    from memory_prediction import cross_validate, fit_scale

    # family a's GPU needs 1.1x the CPU count, family b's 1.3x
    def row(family, x, factor):
        return dict(family=family, fixed=100, x=x, measured=100 + factor * x)

    rows = [row('a', 1000, 1.1), row('a', 2000, 1.1), row('b', 500, 1.3)]
    scale, band = cross_validate(rows)
    assert rows[0]['scale_held_out'] == pytest.approx(1.3)  # b's alone
    assert rows[2]['scale_held_out'] == pytest.approx(1.1)  # a's alone
    assert rows[2]['error'] == pytest.approx((100 + 550) / 750 - 1)
    assert scale == fit_scale(rows) and 1.1 < scale < 1.3
    worst = max(abs(r['error']) for r in rows)
    assert worst <= band < worst + 0.01  # rounded up to a whole percent


@pytest.mark.slow  # two Swin-L steps
def test_memory_prediction_script_runs_at_a_small_size(tmp_path):
    out = run_script('memory_prediction.py', '--rows', 'voc:dtlv2-ls',
                     'voc:full', '--size-scale', '0.1', '--out', str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.load(open(tmp_path / 'results.json'))
    # in the measured file's order
    assert [r['variant'] for r in results['rows']] == ['full', 'dtlv2-ls']
    assert results['rows'][0]['size'] == [64, 128]
    assert '| voc | full |' in (tmp_path / 'results.md').read_text()


@pytest.mark.slow  # four Swin-L steps
def test_gpu_fit_table_runs_at_a_small_size(tmp_path):
    out = run_script('gpu_fit.py', '--families', 'voc', '--variants',
                     'dtlv2-ls', '--size-scale', '0.1', '--out', str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    row, = json.load(open(tmp_path / 'results.json'))
    assert row['batch'] == 2 and row['size'] == [64, 128]
    # checkpointing never raises the peak; the steady peak is above the
    # first step's (the moments)
    assert row['fp32 + cp'] <= row['fp32']
    assert row['fp32'] > row['fp32 first step']
    assert '| retinanet_swin-l_dtlv2-ls_fpn_voc0712 | 2 | 64x128 |' in \
        (tmp_path / 'results.md').read_text()


def test_the_shipped_calibration_is_the_documented_run():
    from dtl_mm.analysis.memory_estimate import GPU_CALIBRATION
    run = json.load(
        open(osp.join(ROOT, 'docs/benchmarks/memory_prediction/results.json')))
    assert GPU_CALIBRATION['scale'] == round(run['scale'], 3)
    assert GPU_CALIBRATION['band'] == run['band']
    compared = [r for r in run['rows'] if r['comparable']]
    assert str(len(compared)) in GPU_CALIBRATION['validated_on']
    assert not any('+' in r['variant'] for r in compared)  # none checkpointed
    assert max(abs(r['error']) for r in compared) <= run['band']


@pytest.mark.slow  # three tiny training steps in their own processes
def test_gpu_suite_runs_end_to_end_at_tiny_size_on_the_cpu(tmp_path):
    out = run_script('gpu_suite.py', '--out', str(tmp_path), '--device', 'cpu',
                     '--tiny', '--scale', '0.1', '--repeats', '1',
                     '--families', 'voc', '--variants',
                     'dtlv2-ls+cp+heads+trunk')
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = (tmp_path / 'summary.md').read_text()
    for step in ('frontier voc', 'AMP fp16 voc', 'AMP bf16 voc',
                 'memory prediction'):
        assert f'| {step} |' in summary and '| ok |' in summary, summary
    frontier = json.load(open(tmp_path / 'frontier_voc' / 'results.json'))
    variants = [r['variant'] for r in frontier['voc']]
    assert variants == ['dtlv2-ls+cp+heads+trunk']
    assert 'throughput_bs1' in frontier['voc'][0]
    amp = json.load(open(tmp_path / 'amp_bf16_voc' / 'results.json'))
    assert {r['amp'] for r in amp['voc']} == {'bf16'}
    # on a CPU there is no GPU peak to predict
    assert 'nothing to compare' in (tmp_path / 'prediction' /
                                    'results.md').read_text()


def test_gpu_suite_stops_starting_steps_when_the_budget_is_spent(tmp_path):
    from gpu_suite import Suite, parse_args
    suite = Suite(parse_args(['--out', str(tmp_path), '--budget-s', '0']))
    assert suite.frontier('voc') is None
    suite.summary()
    assert 'not run: the budget was spent' in (tmp_path /
                                               'summary.md').read_text()


@pytest.mark.slow  # two Swin-B steps
def test_head_policies_table_runs_at_a_small_size(tmp_path):
    out = run_script('head_policies.py', '--size-scale', '0.1', '--rows',
                     'DTLv2-LS, shipped lowmem', 'full, shipped policy',
                     '--out', str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.load(open(tmp_path / 'results.json'))
    assert len(rows) == 2
    peaks = {r['name']: r['peak'] for r in rows}
    # DTL keeps less than full fine-tuning with the same checkpointing
    assert peaks['DTLv2-LS, shipped lowmem'] < peaks['full, shipped policy']
    assert '÷ best full' in (tmp_path / 'results.md').read_text()


@pytest.mark.slow  # two Swin-L steps
def test_memory_scaling_runs_at_small_sizes(tmp_path):
    out = run_script('memory_scaling.py', '--family', 'voc', '--methods',
                     'dtlv2-ls', '--fractions', '0.1', '0.2', '--out',
                     str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.load(open(tmp_path / 'results.json'))
    assert [r['size'] for r in rows] == [[64, 128], [128, 224]]
    small, large = (r['batches'] for r in rows)
    # more pixels, more memory; more images, more memory
    assert large['2']['peak'] > small['2']['peak']
    assert small['1']['peak'] < small['2']['peak'] < small['4']['peak']
    assert (tmp_path / 'scaling.png').is_file()
