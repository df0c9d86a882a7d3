"""docs/custom_dataset.md followed literally on data sets of one's own.

The configs, the check and its output, the small-run commands, the error
messages and the installed package's commands are read out of the guide's
code blocks (each marked ``<!-- guide-test: NAME -->``), so the guide and
this test cannot drift apart. The data are generated here: a COCO-format
instance-segmentation set of 'bolt's and 'nut's (JPEGs, polygon
annotations) and a semantic-segmentation set of 'crack's and 'stain's
(JPEGs, single-channel label PNGs). The commands run as subprocesses in a
folder laid out like the checkout the guide speaks of (tools/ and the
shipped configs linked in, configs/custom/ and data/ of its own), or, for
the installed package's commands, in a folder with only data/ and the
config. ``dtl-mm`` there is the console script beside this interpreter
(what ``pip install`` puts on the PATH), not ``python -m dtl_mm``: the
guide names the script, so the script is what runs.
"""
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dtl_mm.testing.toy_data import coco_instance, write_coco
from helpers.tool_utils import ROOT

GUIDE = osp.join(ROOT, 'docs', 'custom_dataset.md')

SIZE = (160, 128)  # width, height of the generated images

DET_CLASSES = ('bolt', 'nut')

SEG_CLASSES = ('background', 'crack', 'stain')

# the file names the guide's config headings give
COCO_CONFIG = 'configs/custom/parts_cascade-mask-rcnn_swin-b_dtlv2-ls.py'

SEG_CONFIG = 'configs/custom/cracks_upernet_swin-b_dtlv2-ls.py'


# ------------------------------------------------------------- the guide
def guide_block(name):
    with open(GUIDE, encoding='utf-8') as f:
        text = f.read()
    m = re.search(
        r'<!-- guide-test: ' + re.escape(name) + r' -->\n```\w*\n(.*?)```',
        text, re.S)
    assert m, f'no code block marked {name!r} in {GUIDE}'
    return m.group(1)


def guide_commands(name):
    return [
        ln for ln in guide_block(name).splitlines()
        if ln.strip() and not ln.startswith('#')
    ]


def config_path(commands):
    """The config the guide's commands run (the first argument)."""
    return shlex.split(commands[0])[2]


def small_config(real, base_block):
    """The guide's small config: the real one with its _base_ line
    replaced by the guide's."""
    text, n = re.subn(
        r'^_base_ = .*$', base_block.strip(), real, count=1, flags=re.M)
    assert n == 1
    return text


def test_guide_names_its_config_files():
    with open(GUIDE, encoding='utf-8') as f:
        text = f.read()
    assert f'`{COCO_CONFIG}`' in text and f'`{SEG_CONFIG}`' in text
    assert 'SPEC' not in text


# -------------------------------------------------------------- the data
def _background(rng):
    w, h = SIZE
    return Image.fromarray(rng.integers(90, 150, (h, w, 3), dtype=np.uint8))


def _polygon(kind, cx, cy, r, rng):
    if kind == 'bolt':  # an elongated, rotated rectangle
        a = rng.uniform(0, np.pi)
        d = np.array([np.cos(a), np.sin(a)])
        e = np.array([-np.sin(a), np.cos(a)])
        c = np.array([cx, cy], float)
        pts = [
            c + s * r * d + t * 0.35 * r * e
            for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
    else:  # a nut: a hexagon
        t = rng.uniform(0, np.pi / 3) + np.arange(6) * np.pi / 3
        pts = list(zip(cx + r * np.cos(t), cy + r * np.sin(t)))
    return [(round(float(x), 1), round(float(y), 1)) for x, y in pts]


def make_coco(root, n_train=4, n_val=2, seed=0):
    """data/parts as the guide lays it out: annotations/{train,val}.json,
    {train,val}/NNNN.jpg, two objects per image."""
    rng = np.random.default_rng(seed)
    colours = {'bolt': (200, 40, 40), 'nut': (40, 60, 210)}
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, n in (('train', n_train), ('val', n_val)):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, anns = [], []
        for i in range(n):
            img = _background(rng)
            draw = ImageDraw.Draw(img)
            for k in range(2):
                kind = DET_CLASSES[(i + k) % 2]
                r = int(rng.integers(16, 24))
                cx = 40 + 80 * k + int(rng.integers(-8, 9))
                cy = int(rng.integers(r + 4, SIZE[1] - r - 4))
                poly = _polygon(kind, cx, cy, r, rng)
                draw.polygon(poly, fill=colours[kind])
                xs, ys = [p[0] for p in poly], [p[1] for p in poly]
                x0, y0 = max(min(xs), 0), max(min(ys), 0)
                w = min(max(xs), SIZE[0]) - x0
                h = min(max(ys), SIZE[1]) - y0
                coco_instance(anns, i + 1,
                              DET_CLASSES.index(kind) + 1, [x0, y0, w, h],
                              round(0.7 * w * h, 1),
                              [c for p in poly for c in p])
            name = f'{i:04d}.jpg'
            img.save(osp.join(root, split, name), quality=95)
            images.append(
                dict(id=i + 1, file_name=name, width=SIZE[0], height=SIZE[1]))
        write_coco(
            osp.join(root, 'annotations', f'{split}.json'), images, anns,
            DET_CLASSES)


def make_seg(root, n_train=4, n_val=2, seed=1):
    """data/cracks as the guide lays it out: images/{train,val}/NNNN.jpg
    and labels/{train,val}/NNNN.png, 0 = background, 1 = crack, 2 = stain.
    """
    rng = np.random.default_rng(seed)
    for split, n in (('train', n_train), ('val', n_val)):
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'labels', split), exist_ok=True)
        for i in range(n):
            img = _background(rng)
            label = Image.new('L', SIZE, 0)
            di, dl = ImageDraw.Draw(img), ImageDraw.Draw(label)
            x = int(rng.integers(20, 60))
            crack = [(x, 5), (x + 15, 60), (x + 5, 120)]
            di.line(crack, fill=(30, 30, 30), width=5)
            dl.line(crack, fill=1, width=5)
            cx, cy = int(rng.integers(90, 130)), int(rng.integers(35, 95))
            stain = [cx - 22, cy - 16, cx + 22, cy + 16]
            di.ellipse(stain, fill=(170, 120, 40))
            dl.ellipse(stain, fill=2)
            img.save(
                osp.join(root, 'images', split, f'{i:04d}.jpg'), quality=95)
            label.save(osp.join(root, 'labels', split, f'{i:04d}.png'))


def make_workspace(ws):
    """A folder like the checkout: tools/ and the shipped configs linked
    in; the user's configs, data and outputs of its own. Writes the guide's
    two configs and the two small ones, and both data sets."""
    os.symlink(osp.join(ROOT, 'tools'), ws / 'tools')
    (ws / 'configs' / 'custom').mkdir(parents=True)
    for d in ('_base_', 'coco', 'voc', 'ade20k', 'demo'):
        os.symlink(osp.join(ROOT, 'configs', d), ws / 'configs' / d)
    for real, name, base in ((COCO_CONFIG, 'coco-config', 'coco-small-base'),
                             (SEG_CONFIG, 'seg-config', 'seg-small-base')):
        text = guide_block(name)
        (ws / real).write_text(text)
        small = config_path(
            guide_commands(name.replace('config', 'small-commands')))
        (ws / small).write_text(small_config(text, guide_block(base)))
    make_coco(str(ws / 'data' / 'parts'))
    make_seg(str(ws / 'data' / 'cracks'))
    return ws


# the installed entry point, in this interpreter's environment
DTL_MM = osp.join(osp.dirname(sys.executable), 'dtl-mm')


def run_proc(ws, line):
    """One of the guide's command lines (``python ...`` with this python,
    ``dtl-mm ...`` with its console script); the finished process."""
    argv = shlex.split(line)
    assert argv[0] in ('python', 'dtl-mm'), line
    if argv[0] == 'dtl-mm':
        assert osp.isfile(DTL_MM), (
            f'{DTL_MM} missing: install the package (pip install -e .)')
    exe = sys.executable if argv[0] == 'python' else DTL_MM
    return subprocess.run([exe, *argv[1:]],
                          cwd=ws,
                          capture_output=True,
                          text=True,
                          timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def run(ws, line):
    proc = run_proc(ws, line)
    return proc.returncode, proc.stdout + proc.stderr


def run_ok(ws, line):
    rc, out = run(ws, line)
    assert rc == 0, f'{line}\nfailed:\n{out[-4000:]}'
    return out


def metric(out, key):
    found = re.findall(re.escape(key) + r': (-?[\d.]+)', out)
    assert found, f'{key} not in the output:\n{out[-3000:]}'
    return float(found[-1])


# ----------------------------------------------------------- the configs
def test_guide_configs_set_every_head_and_split(tmp_path):
    """The real-size configs of the guide (not trained here: Swin-B from
    a URL) and their small versions: the user's classes in every head and
    dataset, the user's files in every split and evaluator."""
    from mmengine.config import Config

    import dtl_mm  # noqa: F401  (mmseg:: base configs on the fork)
    ws = make_workspace(tmp_path)
    coco_small = config_path(guide_commands('coco-small-commands'))
    seg_small = config_path(guide_commands('seg-small-commands'))
    for path in (COCO_CONFIG, coco_small):
        cfg = Config.fromfile(str(ws / path))
        heads = list(
            cfg.model.roi_head.bbox_head) + [cfg.model.roi_head.mask_head]
        assert [h.num_classes for h in heads] == [2, 2, 2, 2]
        for split, ann in (('train', 'train'), ('val', 'val'), ('test',
                                                                'val')):
            ds = cfg[f'{split}_dataloader'].dataset
            assert ds.metainfo.classes == DET_CLASSES
            assert (ds.data_root, ds.ann_file,
                    ds.data_prefix.img) == ('data/parts/',
                                            f'annotations/{ann}.json',
                                            f'{ann}/')
        for ev in (cfg.val_evaluator, cfg.test_evaluator):
            assert ev.ann_file == 'data/parts/annotations/val.json'
        assert cfg.custom_imports.imports == ['dtl_mm']
        assert cfg.runner_type == 'DTLRunner'
    real = Config.fromfile(str(ws / COCO_CONFIG))
    assert real.model.backbone.type == 'DTLSwinTransformer'
    assert real.model.roi_head.bbox_head[0].fc_out_channels == 1024
    for path in (SEG_CONFIG, seg_small):
        cfg = Config.fromfile(str(ws / path))
        assert cfg.model.decode_head.num_classes == 3
        assert cfg.model.auxiliary_head.num_classes == 3
        for split in ('train', 'val', 'test'):
            ds = cfg[f'{split}_dataloader'].dataset
            assert ds.type == 'BaseSegDataset'
            assert ds.metainfo.classes == SEG_CLASSES
            assert ds.reduce_zero_label is False
            loads = [s for s in ds.pipeline if s.type == 'LoadAnnotations']
            assert loads == [dict(type='LoadAnnotations')]
        assert cfg.custom_imports.imports == ['dtl_mm']
        assert cfg.runner_type == 'DTLRunner'
    assert Config.fromfile(str(ws / SEG_CONFIG)).model.backbone.type == \
        'DTLSwinTransformer'


def test_guide_real_commands_name_the_recipe_checkpoints(tmp_path):
    """Step 5 (Swin-B on GPUs: not run here): tools that exist, options
    they take, the guide's config and the checkpoint its schedule ends
    with; the recipe numbers the text gives."""
    from mmengine.config import Config

    import dtl_mm  # noqa: F401  (mmseg:: base configs on the fork)
    ws = make_workspace(tmp_path)
    cfg = Config.fromfile(str(ws / COCO_CONFIG))
    stem = osp.splitext(osp.basename(COCO_CONFIG))[0]
    last = f'work_dirs/{stem}/epoch_{cfg.train_cfg.max_epochs}.pth'
    lines = guide_commands('real-commands')
    assert len(lines) == 5
    for line in lines:
        argv = shlex.split(line)
        assert argv[0] in ('python', 'bash'), line
        assert osp.isfile(osp.join(ROOT, argv[1])), line
        assert argv[2] == COCO_CONFIG, line
        assert [a for a in argv if a.endswith('.pth')] in ([], [last]), line
        if argv[0] == 'bash':
            assert argv[-1] == '8', line
        with open(osp.join(ROOT, argv[1]), encoding='utf-8') as f:
            source = f.read()
        for opt in (a for a in argv if a.startswith('--')):
            assert f"'{opt}'" in source, (line, opt)
    # "36 epochs, steps at 27 and 33"; "2 images each, the recipe's
    # batch of 16" on 8 GPUs
    assert cfg.train_cfg.max_epochs == 36
    assert cfg.param_scheduler[1].milestones == [27, 33]
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16
    # step 4's threshold
    assert cfg.model.test_cfg.rcnn.score_thr == 0.05
    seg = Config.fromfile(str(ws / SEG_CONFIG))
    with open(GUIDE, encoding='utf-8') as f:
        assert f'`iter_{seg.train_cfg.max_iters}.pth`' in f.read()


@pytest.mark.slow
def test_real_commands_run_on_the_small_config(tmp_path):
    """Step 5's commands, run here with these substitutions only: the
    small config for the Swin-B one, one epoch, 2 CPU processes for 8 GPUs
    (the launchers' gloo fallback; the distributed training in a work dir
    of its own, since the tools refuse one that holds checkpoints), the
    one-epoch checkpoint for epoch_36, the validation images for
    my_images/, the CPU for cuda."""
    from helpers.tool_utils import dist_env
    ws = make_workspace(tmp_path)
    small = config_path(guide_commands('coco-small-commands'))
    stem = osp.splitext(osp.basename(small))[0]
    real_stem = osp.splitext(osp.basename(COCO_CONFIG))[0]
    ckpt = f'work_dirs/{stem}/epoch_1.pth'
    for line in guide_commands('real-commands'):
        line = line.replace(COCO_CONFIG, small).replace(
            f'work_dirs/{real_stem}/epoch_36.pth',
            ckpt).replace('my_images/',
                          'data/parts/val/').replace('--device cuda',
                                                     '--device cpu')
        argv = shlex.split(line)
        if argv[0] == 'bash':
            argv[argv.index('8')] = '2'
        if 'train' in argv[1]:
            if argv[0] == 'bash':
                argv += ['--work-dir', 'work_dirs/dist']
            argv += ['--cfg-options', 'train_cfg.max_epochs=1']
        exe = [sys.executable] if argv[0] == 'python' else ['bash']
        proc = subprocess.run(
            exe + argv[1:],
            cwd=ws,
            capture_output=True,
            text=True,
            timeout=600,
            env=dict(dist_env(), PYTHONPATH=ROOT))
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f'{line}\nfailed:\n{out[-4000:]}'
        if argv[0] == 'bash':
            assert 'distributed run on gloo' in out, out[-3000:]
    assert (ws / ckpt).is_file() and (ws /
                                      'work_dirs/dist/epoch_1.pth').is_file()
    names = sorted(p.stem for p in (ws / 'data/parts/val').glob('*.jpg'))
    assert sorted(p.stem for p in (ws / 'out/parts').glob('*.json')) == names


def _unscoped(cfg):
    """A config without the ``_scope_`` keys mmengine adds to the typed
    dicts of a base config read from a package (``dtl_mm::``, ``mmdet::``):
    which package a base came from, not what it sets."""
    if isinstance(cfg, dict):
        return {k: _unscoped(v) for k, v in cfg.items() if k != '_scope_'}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_unscoped(v) for v in cfg)
    return cfg


def test_installed_configs_read_as_the_checkout_ones(tmp_path):
    """Step 6: the guide's COCO config with its ``dtl_mm::`` bases, in a
    folder outside the checkout, reads as the checkout's with relative
    bases; every ``dtl_mm::`` config the guide names is shipped."""
    from mmengine.config import Config

    import dtl_mm  # noqa: F401  (the dtl_mm:: scope)
    from dtl_mm.utils.package_files import find_config
    ws, here = tmp_path / 'checkout', tmp_path / 'installed'
    ws.mkdir()
    here.mkdir()
    make_workspace(ws)
    coco_small = config_path(guide_commands('coco-small-commands'))
    for block, checkout in (('installed-base', COCO_CONFIG),
                            ('installed-small-base', coco_small)):
        base = guide_block(block)
        assert base.startswith("_base_ = 'dtl_mm::"), base
        path = here / osp.basename(checkout)
        path.write_text(small_config(guide_block('coco-config'), base))
        assert _unscoped(Config.fromfile(str(path)).to_dict()) == \
            _unscoped(Config.fromfile(str(ws / checkout)).to_dict())
    with open(GUIDE, encoding='utf-8') as f:
        named = re.findall(r'dtl_mm::([\w./-]+\.py)', f.read())
    assert len(named) >= 4
    for name in named:
        assert find_config('dtl_mm::' + name), name


# ---------------------------------------------------- the check command
@pytest.mark.slow  # runs tools/check_data.py
def test_check_commands_print_what_they_counted(tmp_path):
    """Step 3's commands on the guide's configs: what they checked, a
    count line per split, "ok"; the output shown, as printed."""
    ws = make_workspace(tmp_path)
    commands = guide_commands('check-commands')
    assert [config_path([c]) for c in commands] == [COCO_CONFIG, SEG_CONFIG]
    shown = guide_block('check-output').splitlines()
    kinds = {COCO_CONFIG: 'CocoDataset', SEG_CONFIG: 'BaseSegDataset'}
    for line in commands:
        proc = run_proc(ws, line)
        assert proc.returncode == 0, f'{line}\n{proc.stderr[-3000:]}'
        config = config_path([line])
        out = proc.stdout.splitlines()
        first = out.index(f'checked the train/val data of {config}:')
        assert out[-1] == 'ok'
        counted = out[first + 1:-1]
        assert [c.split(':')[0] for c in counted] == ['  train', '  val']
        for c in counted:
            assert re.match(
                r'  \w+: ' + kinds[config] + r' \S+: [1-9]\d* '
                r'images', c), c
        if config == COCO_CONFIG:
            assert out[first:] == shown


# ------------------------------------------------------- the small runs
def check_coco_chain(ws, train, test, infer):
    """The guide's small COCO chain: the run checks the data, the test
    prints the COCO metrics, infer writes a drawing and the predictions
    per validation image, by the user's class names."""
    out = run_ok(ws, train)
    assert 'checking the train/val data files' in out
    assert 'data check ok: train: CocoDataset' in out
    ckpt = shlex.split(test)[3]
    assert osp.isfile(ws / ckpt)
    assert shlex.split(infer)[3] == ckpt
    out = run_ok(ws, test)
    # what mmdet logs instead of the metrics when no box is left
    assert 'is empty' not in out
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        assert 0 <= metric(out, key) <= 1
    run_ok(ws, infer)
    argv = shlex.split(infer)
    out_dir = ws / argv[argv.index('--out-dir') + 1]
    names = sorted(p.stem for p in (ws / 'data/parts/val').glob('*.jpg'))
    assert sorted(p.stem for p in out_dir.glob('*.json')) == names
    assert sorted(p.stem for p in out_dir.glob('*.jpg')) == names
    for name in names:
        pred = json.loads((out_dir / f'{name}.json').read_text())
        assert pred['classes'] == list(DET_CLASSES)
        assert len(pred['labels']) == len(pred['scores']) == \
            len(pred['bboxes']) == len(pred['masks']) > 0
        assert set(pred['labels']) <= {0, 1}


@pytest.mark.slow
def test_small_coco_run_train_test_infer(tmp_path):
    ws = make_workspace(tmp_path)
    check_coco_chain(ws, *guide_commands('coco-small-commands'))


@pytest.mark.slow
def test_installed_package_commands(tmp_path):
    """Step 6 in a folder with only the data and the small config (no
    tools/, no configs/): ``dtl-mm`` and a ``dtl_mm::`` base."""
    check, train, test, infer = guide_commands('installed-commands')
    config = config_path([check])
    assert {config_path([c]) for c in (train, test, infer)} == {config}
    assert osp.dirname(config) == ''
    (tmp_path / config).write_text(
        small_config(
            guide_block('coco-config'), guide_block('installed-small-base')))
    make_coco(str(tmp_path / 'data' / 'parts'))
    proc = run_proc(tmp_path, check)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    assert out[-1] == 'ok'
    assert any(
        ln.startswith('  train: CocoDataset data/parts/annotations/train.json')
        for ln in out), proc.stdout
    check_coco_chain(tmp_path, train, test, infer)


@pytest.mark.slow
def test_small_segmentation_run_train_test_infer(tmp_path):
    ws = make_workspace(tmp_path)
    train, test, infer = guide_commands('seg-small-commands')
    out = run_ok(ws, train)
    assert 'checking the train/val data files' in out
    assert osp.isfile(ws / shlex.split(test)[3])
    out = run_ok(ws, test)
    assert 0 <= metric(out, 'mIoU') <= 100
    # the per-class table, by the user's class names
    for name in SEG_CLASSES:
        assert re.search(r'\|\s*' + name + r'\s*\|', out), out[-3000:]
    run_ok(ws, infer)
    argv = shlex.split(infer)
    out_dir = ws / argv[argv.index('--out-dir') + 1]
    names = sorted(p.stem for p in (ws / 'data/cracks/images/val').iterdir())
    assert sorted(p.stem for p in out_dir.glob('*.json')) == names
    assert sorted(p.stem for p in out_dir.glob('*.jpg')) == names
    for name in names:
        pred = json.loads((out_dir / f'{name}.json').read_text())
        assert pred['classes'] == list(SEG_CLASSES)
        label = np.array(pred['sem_seg'])
        assert label.shape == (SIZE[1], SIZE[0])
        assert set(np.unique(label)) <= {0, 1, 2}


# ----------------------------------------------------------- the errors
def _missing_image(ws):
    os.remove(ws / 'data/parts/val/0001.jpg')


def _class_typo(ws):
    path = ws / config_path(guide_commands('coco-small-commands'))
    text = path.read_text()
    assert "__classes = ('bolt', 'nut')" in text
    path.write_text(
        text.replace("__classes = ('bolt', 'nut')",
                     "__classes = ('Bolt', 'nut')"))


def _categories_reversed(ws):
    path = ws / 'data/parts/annotations/train.json'
    data = json.loads(path.read_text())
    data['categories'] = data['categories'][::-1]
    path.write_text(json.dumps(data))


def _mask_head_left_at_80(ws):
    path = ws / config_path(guide_commands('coco-small-commands'))
    text = path.read_text()
    old = 'mask_head=dict(num_classes=len(__classes))'
    assert old in text
    path.write_text(text.replace(old, 'mask_head=dict(num_classes=80)'))


def _label_value_3(ws):
    path = ws / 'data/cracks/labels/train/0002.png'
    label = np.array(Image.open(path))
    label[:4, :4] = 3
    Image.fromarray(label).save(path)


def _pipeline_reduces_zero_label(ws):
    path = ws / config_path(guide_commands('seg-small-commands'))
    text = path.read_text()
    old = "__labels = dict(type='LoadAnnotations')"
    assert old in text
    path.write_text(
        text.replace(
            old, "__labels = dict(type='LoadAnnotations'"
            ", reduce_zero_label=True)"))


# a fault per error line the guide shows, by a phrase of the line
FAULTS = {
    'are missing': ('coco', _missing_image),
    'not among its categories': ('coco', _class_typo),
    'list them as': ('coco', _categories_reversed),
    'num_classes=80': ('coco', _mask_head_left_at_80),
    'label values [3]': ('seg', _label_value_3),
    'LoadAnnotations has reduce_zero_label':
    ('seg', _pipeline_reduces_zero_label),
}

ERRORS = [ln for ln in guide_block('errors').splitlines() if ln.strip()]


def test_every_error_shown_is_tested():
    assert len(ERRORS) == len(FAULTS)
    for line in ERRORS:
        assert sum(phrase in line for phrase in FAULTS) == 1, line


# faults tools/check_data.py is run on as well: a data error, and the
# config error the guide says only train / test find
CHECKED_ALONE = ('are missing', 'num_classes=80')


@pytest.mark.slow  # runs tools/check_data.py
@pytest.mark.parametrize('phrase', CHECKED_ALONE)
def test_check_data_prints_the_data_errors(tmp_path, phrase):
    line = next(ln for ln in ERRORS if phrase in ln)
    ws = make_workspace(tmp_path)
    task, fault = FAULTS[phrase]
    fault(ws)
    tool = shlex.split(guide_commands('check-commands')[0])[:2]
    config = config_path(guide_commands(f'{task}-small-commands'))
    proc = run_proc(ws, shlex.join([*tool, config]))
    kind, _, message = line.partition(': ')
    if kind == 'DataError':
        assert proc.returncode == 1, proc.stdout[-3000:]
        last = proc.stderr.rstrip().splitlines()[-1]
        assert last == 'data check failed: ' + message, proc.stderr[-3000:]
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.splitlines()[-1] == 'ok'


@pytest.mark.slow  # runs tools/train.py
@pytest.mark.parametrize(
    'line', ERRORS, ids=[next(p for p in FAULTS if p in ln) for ln in ERRORS])
def test_check_stops_the_run_with_the_error_shown(tmp_path, line):
    """The fault behind each error of the guide, made on the generated
    data: the guide's small training command stops before building the
    model, with that message as its last line."""
    ws = make_workspace(tmp_path)
    task, fault = next(v for p, v in FAULTS.items() if p in line)
    fault(ws)
    train = guide_commands(f'{task}-small-commands')[0]
    rc, out = run(ws, train)
    assert rc != 0
    assert out.rstrip().splitlines()[-1].endswith(line), out[-3000:]
    assert not (ws / 'work_dirs').exists() or not any(
        (ws / 'work_dirs').rglob('*.pth'))
    assert 'Parameters (trainable / frozen)' not in out
