"""The memory estimate of a training step: its parts add up, the input size
comes from the config, and the batch / setting that fits is the right
one."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from dtl_mm.analysis.memory_estimate import (GPU_HEADROOM, StepMemory,
                                             at_batch, fits, largest_batch,
                                             measure_step_memory, parse_memory,
                                             predicted_gpu_peak,
                                             training_input_size)
from dtl_mm.analysis.saved_tensors import saved_for_backward
from dtl_mm.analysis.training_step import TrainingStep, synthetic_batch
from dtl_mm.apis.runner_setup import read_config
from helpers.tool_utils import DEMO, ROOT, run_tool

SIZE = (128, 160)
# large enough that activations, not the optimizer step, set the peak
LARGE = (384, 512)
NO_BAND = dict(scale=1.0, band=0.0)


@pytest.fixture(scope='module')
def voc():
    return read_config(osp.join(ROOT, DEMO['voc']))


@pytest.fixture(scope='module')
def voc_memory(voc):
    return measure_step_memory(voc, 2, SIZE)


def test_parts_add_up(voc, voc_memory):
    m = voc_memory
    # saved for backward, by part, is what the benchmarks' independent
    # pass counts
    from dtl_mm.analysis.memory_estimate import model_for_memory
    step = TrainingStep(
        model_for_memory(voc), synthetic_batch(voc, 2, SIZE), 'cpu')
    assert saved_for_backward(step)['saved_total'] == m.saved
    assert min(m.saved_backbone, m.saved_side, m.saved_heads) > 0
    # what forward keeps is alive at the end of forward; the gradients at
    # the end of backward
    assert m.forward_backward_peak >= max(m.saved, m.gradients)
    # AdamW: two moments per trainable weight, created by the first step
    assert m.moments == 2 * m.gradients
    assert m.optimizer_peak >= m.gradients + m.moments
    assert m.inputs == 2 * 3 * SIZE[0] * SIZE[1] * 4
    # the steady peak: the first step's plus the resident moments, unless
    # the optimizer step is the peak
    assert m.peak() == m.weights + m.inputs + max(
        m.moments + m.forward_backward_peak, m.optimizer_peak)
    assert m.peak(steady=False) < m.peak()


@pytest.fixture(scope='module')
def large(voc):
    """The step plain, with_cp, with_cp and the heads checkpointed."""
    return [
        measure_step_memory(voc, 2, LARGE),
        measure_step_memory(voc, 2, LARGE, with_cp=True),
        measure_step_memory(
            voc, 2, LARGE, with_cp=True, checkpointing=['neck', 'bbox_head'])
    ]


@pytest.mark.slow  # three steps at 384x512
def test_checkpointing_lowers_the_peak(large):
    plain, cp, heads = large
    assert cp.saved_backbone < plain.saved_backbone
    assert heads.saved_heads < cp.saved_heads
    assert cp.peak() < plain.peak()
    # a checkpointed head recomputes its activations in backward, beside
    # what the rest keeps: the peak need not fall with what is saved
    assert heads.peak() <= cp.peak()


@pytest.mark.slow
def test_extrapolating_from_smaller_inputs(voc, large):
    """What --measure-at does: two smaller inputs, a straight line in
    pixels; within a few percent of measuring at the size itself."""
    from dtl_mm.analysis.memory_estimate import at_pixels
    half, quarter = (
        measure_step_memory(voc, 2, (LARGE[0] // f, LARGE[1] // f))
        for f in (2, 4))
    px = LARGE[0] * LARGE[1]
    guess = at_pixels(half, px // 4, quarter, px // 16, px)
    assert guess.weights == large[0].weights
    assert guess.peak() == pytest.approx(large[0].peak(), rel=0.05)
    with pytest.raises(ValueError, match='two different input sizes'):
        at_pixels(half, 1, quarter, 1, px)


@pytest.mark.slow
def test_amp_keeps_less(voc, large):
    amp = measure_step_memory(voc, 2, LARGE, amp=torch.bfloat16)
    # activations in half precision (plus the half-precision copies of
    # the weights that backward needs, which is why not half)
    assert amp.saved < 0.75 * large[0].saved
    assert amp.weights == large[0].weights  # fp32 master weights


def test_input_size_from_the_training_pipeline():
    sizes = {
        'coco/cascade-mask-rcnn_swin-b_dtlv2-ls_fpn_3x_coco.py': (800, 1344),
        'voc/retinanet_swin-l_dtlv2-ls_fpn_voc0712.py': (608, 1024),
        'ade20k/upernet_swin-l_dtlv2-ls_160k_ade20k-512x512.py': (512, 512),
        'demo/retinanet_swin-t_dtlv2-ls_toy-voc.py': None,
    }
    for path, size in sizes.items():
        cfg = read_config(osp.join(ROOT, 'configs', path))
        got = training_input_size(cfg)
        if size is not None:
            assert got == size, path
        else:
            assert all(s % 32 == 0 for s in got), got


def toy_memory(**kw):
    base = dict(
        weights=100,
        gradients=10,
        moments=20,
        inputs=10,
        saved_backbone=100,
        saved_side=50,
        saved_heads=50,
        forward_backward_peak=300,
        optimizer_peak=40)
    base.update(kw)
    return StepMemory(**base)


def test_batch_scaling_and_the_largest_batch_that_fits():
    m = toy_memory()  # measured at batch 2
    four = at_batch(m, 2, 4)
    assert (four.inputs, four.forward_backward_peak, four.saved) == \
        (20, 600, 400)
    assert (four.weights, four.moments, four.optimizer_peak) == (100, 20, 40)
    # steady peak at batch b: 100 + 5b + 20 + 150b = 120 + 155b
    card = GPU_HEADROOM + 120 + 155 * 7
    assert largest_batch(m, 2, card, NO_BAND) == 7
    assert largest_batch(m, 2, card - 1, NO_BAND) == 6
    assert largest_batch(m, 2, GPU_HEADROOM + 200, NO_BAND) == 0
    assert fits(at_batch(m, 2, 7), card, NO_BAND)
    # the band is on the safe side: with ±10 % fewer images fit
    assert largest_batch(m, 2, card, dict(scale=1.0, band=0.1)) < 7
    pred, low, high = predicted_gpu_peak(
        m, calibration=dict(scale=1.0, band=0.1))
    assert (low, high) == pytest.approx((0.9 * pred, 1.1 * pred))


@pytest.mark.parametrize('text,expected',
                         [('24G', 24 << 30), ('80GB', 80 << 30),
                          ('40GiB', 40 << 30), ('512M', 512 << 20),
                          ('16', 16 << 30)])
def test_memory_sizes(text, expected):
    assert parse_memory(text) == expected


def test_a_bad_memory_size_is_named():
    with pytest.raises(ValueError, match="e.g. 24G.*got 'lots'"):
        parse_memory('lots')


@pytest.mark.slow  # the tool as a script, four steps
def test_the_tool_names_the_setting_that_fits(tmp_path, large):
    """A card between the checkpointed and the plain step's needs: the
    configured step does not fit, backbone checkpointing does."""
    plain_high = predicted_gpu_peak(large[0])[2]
    cp_high = predicted_gpu_peak(large[1])[2]
    card_mb = (GPU_HEADROOM + (plain_high + cp_high) / 2) / (1 << 20)
    out = run_tool(tmp_path, osp.join(ROOT, 'tools/memory.py'), DEMO['voc'],
                   '--batch', '2', '--size', *map(str, LARGE), '--gpu-mem',
                   f'{card_mb:.1f}M')
    assert '- as configured: does not fit at batch 2' in out
    assert '- backbone with_cp=True:' in out
    line = next(x for x in out.splitlines() if 'backbone with_cp=True' in x)
    assert ', fits;' in line
    assert '**predicted GPU peak**' in out
    # a DTL backbone: the lowest-memory setting, with the trunk recomputed
    assert '- everything checkpointed, trunk recomputed:' in out
    # the demo config checkpoints nothing: no caveat
    assert 'This configuration checkpoints' not in out


@pytest.mark.slow  # the tool as a script
def test_the_tool_takes_cfg_options_and_names_an_unchecked_band(tmp_path):
    out = run_tool(tmp_path,
                   osp.join(ROOT, 'tools/memory.py'), DEMO['voc'], '--size',
                   *map(str,
                        SIZE), '--cfg-options', 'model.backbone.with_cp=True')
    assert '**predicted GPU peak**' in out
    assert 'This configuration checkpoints: no checkpointed step' in out


@pytest.mark.slow  # the tool as a script, five times
@pytest.mark.parametrize('args,message', [
    (['--size', '0', '0'], '--size: a positive height and width, got 0 0'),
    (['--gpu-mem', '0'], '--gpu-mem: more than the 1 GB'),
    (['--gpu-mem', '512M'], '--gpu-mem: more than the 1 GB'),
    (['--measure-at', '1.5'], '--measure-at: a fraction in (0, 1)'),
    (['--batch', '0'], '--batch: at least 1'),
])
def test_bad_arguments_are_one_line_errors(args, message):
    proc = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/memory.py'), DEMO['voc'], *args
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and 'Traceback' not in proc.stderr
