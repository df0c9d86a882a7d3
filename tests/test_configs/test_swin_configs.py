"""Every shipped config loads and builds; counts and weight decay."""
import copy
import functools
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from dtl_mm.apis.runner_setup import build_model
from dtl_mm.models import (AdapterSwinTransformer, AdaptFormerSwinTransformer,
                           DTLSwinTransformer, LoRASwinTransformer,
                           PretrainedSwinTransformer)
from dtl_mm.models.recompute import (checkpointing_requested,
                                     enable_activation_checkpointing)
from dtl_mm.utils.param_count import count_parameters
from helpers.swin_utils import skip_random_init
from helpers.tool_utils import ROOT

ALL = sorted(
    f for d in ('coco', 'voc', 'ade20k')
    for f in glob.glob(osp.join(ROOT, 'configs', d, '*.py')))

# one config per variant and Swin size, and one low-memory config per task
MAIN = [f for f in ALL if '-lowmem_' not in f]

LOWMEM = [f for f in ALL if '-lowmem_' in f]

TASKS = ('coco', 'voc', 'ade20k')

PETL_SWIN_B = (('lora', 3.08), ('adapter', 3.11), ('adaptformer', 3.10))

PETL_SWIN_L = (('lora', 4.62), ('adapter', 4.66), ('adaptformer', 4.64))

# trainable backbone-side parameters (side network) of the DTL configs,
# in millions; the COCO/VOC rows are the paper's (its Tables 8 and 9)
SIDE = {
    ('coco', 'swin-b', 'dtlv1'):
    5.81,
    ('coco', 'swin-b', 'dtlv2'):
    3.93,
    ('coco', 'swin-b', 'dtlv2-ls'):
    2.86,
    ('voc', 'swin-l', 'dtlv1'):
    4.38,
    ('voc', 'swin-l', 'dtlv2'):
    2.99,
    ('voc', 'swin-l', 'dtlv2-ls'):
    2.18,
    # ADE20K at d' = 192: the architecture the paper describes gives these
    # (its Table 10 reports 5.7 / 3.6 M; see docs/configs.md)
    ('ade20k', 'swin-l', 'dtlv2'):
    4.44,
    ('ade20k', 'swin-l', 'dtlv2-ls'):
    3.24,
    # PETL baselines sized like the paper's (3.1 M on Swin-B, 4.6-4.7 M on
    # Swin-L)
    **{(t, 'swin-b', v): n
       for t in TASKS for v, n in PETL_SWIN_B},
    **{(t, 'swin-l', v): n
       for t in TASKS for v, n in PETL_SWIN_L},
}

VARIANTS = ('full', 'fixed', 'lora', 'adapter', 'adaptformer', 'dtlv1',
            'dtlv2', 'dtlv2-ls')

BACKBONE = dict(
    full=PretrainedSwinTransformer,
    fixed=PretrainedSwinTransformer,
    lora=LoRASwinTransformer,
    adapter=AdapterSwinTransformer,
    adaptformer=AdaptFormerSwinTransformer)


@functools.lru_cache(maxsize=None)
def _parsed(path):
    return Config.fromfile(path)


def load(path):
    """The config at ``path``, parsed once per session (each caller gets
    a copy of its own)."""
    return copy.deepcopy(_parsed(path))


def describe(path):
    name = osp.basename(path)
    task = osp.basename(osp.dirname(path))
    arch = 'swin-b' if 'swin-b' in name else 'swin-l'
    variant = next(v for v in VARIANTS if f'_{v}_' in name)
    return task, arch, variant


def test_all_variants_and_sizes_present():
    assert len(MAIN) == 48
    assert {describe(p)
            for p in MAIN} == {(t, a, v)
                               for t in ('coco', 'voc', 'ade20k')
                               for a in ('swin-b', 'swin-l') for v in VARIANTS}


@pytest.mark.parametrize('path', MAIN, ids=[osp.basename(p) for p in MAIN])
def test_config_builds_with_expected_trainable_parts(path):
    task, arch, variant = describe(path)
    cfg = load(path)
    # the plugin, its runner and atomic checkpoint writes, by public config
    # keys (no process-wide change)
    assert cfg.custom_imports.imports == ['dtl_mm']
    assert cfg.runner_type == 'DTLRunner'
    assert cfg.default_hooks.checkpoint.backend_args == dict(
        backend='atomic_local')
    assert cfg.default_scope == ('mmseg' if task == 'ade20k' else 'mmdet')
    ckpt = cfg.model.backbone.init_cfg.checkpoint
    assert ckpt.endswith(
        ('swin_base_patch4_window7_224_22k.pth'
         if arch == 'swin-b' else 'swin_large_patch4_window7_224_22k.pth'))
    cfg.model.backbone.init_cfg = None
    with skip_random_init():  # counts and types, not values, are checked
        model = build_model(cfg)
    counts = count_parameters(model)
    backbone = model.backbone
    assert type(backbone) is BACKBONE.get(variant, DTLSwinTransformer)
    assert backbone.channels[0] == (128 if arch == 'swin-b' else 192)
    assert counts['heads']['trainable'] > 0
    if task != 'ade20k':
        assert counts['neck']['trainable'] > 0
    if variant == 'full':
        assert counts['trunk']['frozen'] == 0
        assert counts['trunk']['trainable'] > 80e6
    else:
        assert counts['trunk']['trainable'] == 0
    side = counts['side network']['trainable']
    assert (side > 0) == (variant not in ('full', 'fixed'))
    if (task, arch, variant) in SIDE:
        assert abs(side / 1e6 - SIDE[task, arch, variant]) < 0.01
    if variant.startswith('dtl'):
        rank = {'coco': 256, 'voc': 128, 'ade20k': 192}[task]
        assert backbone.layout.options.rank == rank


@pytest.mark.slow  # multi-second: out of the fast loop
@pytest.mark.parametrize('path', LOWMEM, ids=[osp.basename(p) for p in LOWMEM])
def test_lowmem_config_checkpoints_everything_that_trains(path):
    cfg = load(path)
    base = load(path.replace('-lowmem_', '_'))
    parts = checkpointing_requested(cfg)
    assert parts[0] == 'backbone'
    cfg.pop('checkpointed_parts')
    # the trunk is recomputed too: the lowest memory
    assert cfg.model.backbone.pop('recompute_trunk') is True
    if 'roi_head' in parts:  # by its checkpointed type
        assert cfg.model.roi_head.type == 'CheckpointedCascadeRoIHead'
        cfg.model.roi_head.type = base.model.roi_head.type
    assert cfg.pretty_text == base.pretty_text  # nothing else differs
    cfg = load(path)
    cfg.model.backbone.init_cfg = None
    with skip_random_init():
        model = build_model(cfg)
    enable_activation_checkpointing(model, cfg.checkpointed_parts)
    assert model.backbone.with_cp is True
    trained = {
        n.split('.')[0]
        for n, p in model.named_parameters() if p.requires_grad
    }
    assert trained == set(parts)  # every part that trains, and only those


# the library configs each task's recipe starts from
UPSTREAM = {
    'coco': [
        'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
        'mmdet::_base_/datasets/coco_instance.py',
        'mmdet::_base_/schedules/schedule_1x.py',
        'mmdet::_base_/default_runtime.py'
    ],
    'voc': ['mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py'],
    'ade20k': [
        'mmseg::swin/swin-large-patch4-window7-in22k-pre_upernet_'
        '8xb2-160k_ade20k-512x512.py'
    ],
}

DEMO_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')))


@pytest.mark.slow  # multi-second: out of the fast loop
def test_dumped_configs_hold_only_what_the_run_uses(tmp_path):
    """Beyond the names mmdet's / mmseg's own configs have, ours add only
    the plugin import, runner and hooks (and the demo configs their opt-in
    to a random Swin): helper values (Swin sizes, a shared head,
    scales, schedule lengths) stay out of the config a run dumps."""
    upstream = {}
    for task, bases in UPSTREAM.items():
        path = tmp_path / f'{task}.py'
        path.write_text(f'_base_ = {bases!r}\n')
        upstream[task] = set(Config.fromfile(str(path)))
    for path in MAIN + DEMO_CONFIGS:
        task = next(t for t in UPSTREAM if t in osp.basename(path))
        cfg = load(path)
        dumped = tmp_path / 'dumped.py'
        # the text a run dumps, without yapf's formatting: that changes
        # only its layout, and is most of a dump's time
        Config(
            cfg.to_dict(), filename=path,
            format_python_code=False).dump(str(dumped))
        names = set(Config.fromfile(str(dumped)))
        # the demo configs train a random tiny Swin, and say so, with a
        # fixed seed
        opt_in = {'allow_random_trunk', 'randomness'
                  } if path in DEMO_CONFIGS else set()
        ours = {'custom_imports', 'custom_hooks', 'runner_type'} | opt_in
        assert names - upstream[task] == ours, path
