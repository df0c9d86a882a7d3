"""The package as a user installs it: a wheel built from this checkout,
installed with pip into a fresh virtualenv, used from a folder outside the
checkout through ``mim``, the ``dtl-mm`` entry point and ``dtl_mm::`` base
configs; and the checks that every shipped config carries into any tool.
"""
import glob
import importlib.metadata as md
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers.tool_utils import DEMO, ROOT, tool

VOC_DEMO = osp.basename(DEMO['voc'])

SHORT_VOC = ['train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1']


def run(cmd, cwd, env=None, check=True, timeout=900):
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, \
            f'{" ".join(map(str, cmd))} failed:\n{out[-4000:]}'
    return proc.returncode, out


# ------------------------------------------------ packaging, in this venv
@pytest.mark.slow  # parses every shipped config
def test_model_index_lists_every_config_with_the_papers_numbers():
    rc, out = run([sys.executable,
                   tool('make_model_index.py'), '--check'],
                  ROOT,
                  dict(os.environ, PYTHONPATH=ROOT),
                  check=False)
    assert rc == 0, f'model-index.yml / metafiles out of date:\n{out}'
    import yaml
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    models = []
    for meta in index['Import']:
        with open(osp.join(ROOT, meta)) as f:
            models += yaml.safe_load(f)['Models']
    listed = {m['Config'] for m in models}
    shipped = {
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
        if '/_base_/' not in p
    }
    assert listed == shipped
    assert not any('Weights' in m for m in models)  # none are published
    dtl = {
        m['Name']: m
        for m in models if m['Name'] == 'retinanet_swin-l_dtlv2-ls_fpn_voc0712'
    }
    [voc] = dtl.values()
    assert voc['Results'] == [
        dict(
            Task='Object Detection',
            Dataset='PASCAL VOC 2007',
            Metrics={'AP (paper)': 87.0})
    ]
    assert 'the paper (Table 9' in voc['Metadata']['Results Source']
    # mim search tags each folder with the trunks its configs use
    archs = {}
    for meta in index['Import']:
        with open(osp.join(ROOT, meta)) as f:
            [coll] = yaml.safe_load(f)['Collections']
        archs[osp.basename(
            osp.dirname(meta))] = coll['Metadata']['Architecture']
    assert archs['voc'] == ['Swin Transformer', 'DTL']
    assert archs['vit'] == archs['vit_mmpretrain'] == [
        'Vision Transformer', 'DTL'
    ]
    assert archs['demo'] == ['Swin Transformer', 'Vision Transformer', 'DTL']


@pytest.mark.slow  # runs the tools as subprocesses
def test_entry_point_verbs_and_python_m():
    env = dict(os.environ, PYTHONPATH=ROOT)
    rc, out = run([sys.executable, '-m', 'dtl_mm', '--help'], ROOT, env)
    for verb in ('train', 'test', 'infer', 'convert', 'check-data', 'params',
                 'memory', 'env'):
        assert f'  {verb} ' in out
    rc, out = run([sys.executable, '-m', 'dtl_mm', 'env', '--help'], ROOT, env)
    assert 'usage: dtl-mm env' in out and '--versions' in out
    rc, out = run([sys.executable, '-m', 'dtl_mm', 'trian'],
                  ROOT,
                  env,
                  check=False)
    assert rc == 2 and "unknown verb 'trian'" in out


@pytest.mark.slow  # runs the tools as subprocesses
def test_check_env_reports_devices():
    rc, out = run([sys.executable, tool('check_env.py')], ROOT,
                  dict(os.environ, PYTHONPATH=ROOT))
    import torch
    assert f'torch    {torch.__version__}' in out
    assert ('CUDA available'
            if torch.cuda.is_available() else 'CUDA not available') in out
    from mmcv.ops import get_compiling_cuda_version
    built = get_compiling_cuda_version()
    assert (f'mmcv.ops built with CUDA {built}'
            if built != 'not available' else 'mmcv.ops CPU only') in out


@pytest.mark.slow  # runs the tools as subprocesses
def test_check_env_reports_a_broken_requirement(tmp_path):
    """A package installed beside the stack that wants another setuptools
    (as openmim's dependency openxlab does) is reported, not 'ok'."""
    site = tmp_path / 'site'
    info = site / 'pins_setuptools-1.0.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text('Metadata-Version: 2.1\n'
                                   'Name: pins-setuptools\nVersion: 1.0\n'
                                   'Requires-Dist: setuptools==60.2.0\n')
    (info / 'RECORD').write_text('')
    rc, out = run([sys.executable, tool('check_env.py')],
                  ROOT,
                  dict(os.environ, PYTHONPATH=f'{ROOT}:{site}'),
                  check=False)
    assert rc == 1, out
    assert re.search(
        r'problem: pip check: pins-setuptools 1.0 has requirement '
        r'setuptools==60.2.0, but you have setuptools \S+', out), out


@pytest.mark.slow  # runs the tools as subprocesses
def test_missing_pkg_resources_names_the_fix(tmp_path):
    """mmengine 0.10.7 finds ``mmdet::`` bases through pkg_resources, which
    setuptools >= 82 no longer has: the error says what to install."""
    import inspect

    from mmengine.utils import package_utils
    if 'pkg_resources' not in inspect.getsource(package_utils):
        pytest.skip('this mmengine finds packages without pkg_resources')
    code = ('import sys; sys.modules["pkg_resources"] = None\n'
            'from dtl_mm.apis.runner_setup import read_config\n'
            f'read_config({osp.join(ROOT, DEMO["voc"])!r})')
    rc, out = run([sys.executable, '-c', code],
                  tmp_path,
                  dict(os.environ, PYTHONPATH=ROOT),
                  check=False)
    assert rc == 1
    assert 'pip install "setuptools<82"' in out.splitlines()[-1]


@pytest.mark.slow  # runs the tools as subprocesses
def test_param_table_counts_a_config():
    from dtl_mm.apis.runner_setup import build_model, read_config
    from dtl_mm.utils.param_count import count_parameters
    rc, out = run(
        [sys.executable, tool('param_table.py'), DEMO['voc']], ROOT,
        dict(os.environ, PYTHONPATH=ROOT))
    counts = count_parameters(build_model(read_config(DEMO['voc'])))
    side = counts['side network']['trainable']
    assert f'{"side network":<16} {side:>14,}' in out
    assert side > 0


def test_tools_build_the_dtl_runner_and_skip_the_data_check_on_request(
        tmp_path):
    from dtl_mm.apis.runner_setup import build_runner, load_config
    from dtl_mm.engine.runner import DTLRunner
    cfg = load_config(osp.join(ROOT, DEMO['voc']), work_dir=str(tmp_path))
    runner = build_runner(cfg, check_data=False)
    assert type(runner) is DTLRunner and runner.check_data is False
    cfg = load_config(osp.join(ROOT, DEMO['voc']), work_dir=str(tmp_path))
    cfg.pop('runner_type')  # a config of the user's that names no runner
    runner = build_runner(cfg)
    assert type(runner) is DTLRunner and runner.check_data is True


@pytest.mark.slow  # runs the tools as subprocesses
def test_check_data_verb_prints_what_it_counted(toy_workspace):
    rc, out = run([
        sys.executable, '-m', 'dtl_mm', 'check-data',
        osp.join(ROOT, DEMO['voc'])
    ], toy_workspace, dict(os.environ, PYTHONPATH=ROOT))
    lines = out.splitlines()
    assert 'ok' in lines, out
    voc07 = osp.join('data', 'toy', 'voc', 'VOCdevkit', 'VOC2007')
    assert any(
        line.startswith('  train: VOCDataset ') and voc07 in line
        and 'images' in line and 'objects of 3 classes' in line
        for line in lines), out
    assert any(line.startswith('  val: VOCDataset ') for line in lines)


# --------------------- mmdet's own tool: the config's runner stops the run
def mmdet_train_tool():
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    assert osp.isfile(path), 'mmdet installed without its .mim tools'
    return path


@pytest.mark.slow  # starts mmdet's tools/train.py twice
def test_mmdet_train_tool_stops_on_wrong_classes_and_missing_image(
        toy_workspace, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    config = osp.join(ROOT, DEMO['voc'])
    rc, out = run([
        sys.executable,
        mmdet_train_tool(), config, '--work-dir',
        str(tmp_path / 'wrong_classes'), '--cfg-options',
        'model.bbox_head.num_classes=5', *SHORT_VOC
    ],
                  toy_workspace,
                  env,
                  check=False)
    assert rc != 0
    assert 'model.bbox_head.num_classes=5: the data set has 3 classes' \
        in out, out[-3000:]
    assert 'Epoch(train)' not in out

    data = tmp_path / 'ws' / 'data' / 'toy'
    shutil.copytree(toy_workspace / 'data' / 'toy' / 'voc', data / 'voc')
    gone = sorted(
        glob.glob(
            str(data / 'voc' / '*' / 'VOC2007' / 'JPEGImages' / '*.jpg')))[0]
    os.remove(gone)
    rc, out = run([
        sys.executable,
        mmdet_train_tool(), config, '--work-dir',
        str(tmp_path / 'missing_image'), '--cfg-options', *SHORT_VOC
    ],
                  tmp_path / 'ws',
                  env,
                  check=False)
    assert rc != 0
    assert 'image files listed by' in out and 'are missing' in out, \
        out[-3000:]
    assert osp.basename(gone) in out
    assert 'Epoch(train)' not in out


# ------------------------------- a built wheel in a fresh virtualenv (slow)
def cached_mmcv_wheel():
    """The mmcv wheel tools/install.sh built for this python and torch (the
    fresh venv reuses it rather than building mmcv again)."""
    import torch
    try:
        version = md.version('mmcv')
    except md.PackageNotFoundError:
        pytest.skip('the wheel test runs on the pinned stack (upstream mmcv)')
    cache = os.environ.get('DTL_MM_WHEEL_CACHE') or osp.join(
        os.environ.get('DTL_MM_CACHE') or osp.expanduser('~/.cache/dtl_mm'),
        'wheels')
    key = 'py%d%d-torch%s' % (*sys.version_info[:2],
                              torch.__version__.replace('+', '_'))
    found = sorted(
        glob.glob(osp.join(cache, key + '*', f'mmcv-{version}-*.whl')))
    assert found, (f'no cached mmcv {version} wheel under {cache}/{key}*: '
                   f'tools/install.sh builds it')
    return found[0]


def checkout_copy(dst):
    """The checkout's files as git sees them (tracked, and new files not
    ignored): what a clean clone has, without its build outputs."""
    files = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard', '-z'],
        cwd=ROOT,
        capture_output=True,
        check=True).stdout.decode().split('\0')
    for rel in filter(None, files):
        if osp.isfile(osp.join(ROOT, rel)):
            os.makedirs(osp.dirname(osp.join(dst, rel)), exist_ok=True)
            shutil.copy2(osp.join(ROOT, rel), osp.join(dst, rel))
    return dst


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(venv bin folder, workspace outside the checkout, its environment):
    a wheel of this checkout installed with pip into a fresh virtualenv
    (no system site-packages) with the [openmmlab,mim] extras, the cached
    mmcv wheel and this torch; pip's own cache is reused."""
    tmp = tmp_path_factory.mktemp('wheel')
    src = checkout_copy(tmp / 'src')
    run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '-q', '-w',
        str(tmp / 'dist'),
        str(src)
    ], tmp)
    [wheel] = glob.glob(str(tmp / 'dist' / 'dtl_mm-*.whl'))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert 'dtl_mm/.mim/model-index.yml' in names
    assert f'dtl_mm/.mim/{DEMO["voc"]}' in names
    assert 'dtl_mm/.mim/tools/train.py' in names
    # the toy-data writer the tools use ships; the tests' helpers (tiny
    # models, crafted checkpoints that run code) do not
    assert 'dtl_mm/testing/toy_data.py' in names
    shipped_py = {n for n in names if n.endswith('.py')}
    assert not [
        n for n in shipped_py if 'helpers' in n.split('/') or n.startswith(
            ('tests/', 'dtl_mm/.mim/tests/'))
    ]
    assert sorted(n for n in shipped_py
                  if n.startswith('dtl_mm/testing/')) == [
                      'dtl_mm/testing/__init__.py',
                      'dtl_mm/testing/toy_data.py'
                  ]

    venv = tmp / 'venv'
    run([sys.executable, '-m', 'venv', str(venv)], tmp)
    bin_dir = venv / 'bin'
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME')
    }
    env.update(
        PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
        PIP_DISABLE_PIP_VERSION_CHECK='1')
    pip = [str(bin_dir / 'python'), '-m', 'pip', 'install', '-q']
    constraints = tmp / 'constraints.txt'
    # the distributions' versions: a CUDA wheel's torch.__version__ carries
    # a local tag (+cu130) that its metadata does not
    constraints.write_text(f'torch=={md.version("torch")}\n'
                           f'numpy=={md.version("numpy")}\n')
    # as tools/install.sh: numpy and torch, then mmcv (its own wheel, no
    # dependencies of its choice), then the rest
    run(pip + ['-c', str(constraints), 'numpy', 'torch'], tmp, env)
    run(pip + ['--no-deps', cached_mmcv_wheel()], tmp, env)
    run(pip + ['-c', str(constraints), f'{wheel}[openmmlab,mim]'], tmp, env)
    ws = tmp / 'ws'
    os.makedirs(ws)
    run([
        str(bin_dir / 'dtl-mm'), 'toy-data', 'data/toy', '--only', 'voc',
        '--train', '8', '--val', '4'
    ], ws, env)
    return bin_dir, ws, env


@pytest.mark.slow  # builds a wheel and installs the stack into a new venv
def test_wheel_runs_outside_the_checkout(installed):
    bin_dir, ws, env = installed
    rc, out = run([
        str(bin_dir / 'python'), '-c',
        'import dtl_mm, os.path as p; print(p.dirname(dtl_mm.__file__))'
    ], ws, env)
    assert 'site-packages' in out and ROOT not in out


@pytest.mark.slow
def test_mim_trains_tests_and_searches(installed):
    bin_dir, ws, env = installed
    mim = str(bin_dir / 'mim')
    rc, out = run([
        mim, 'train', 'dtl_mm', VOC_DEMO, '--work-dir', 'wd_mim',
        '--cfg-options', *SHORT_VOC
    ], ws, env)
    assert 'data check ok' in out and 'Epoch(train) [1]' in out
    assert (ws / 'wd_mim' / 'epoch_1.pth').is_file()
    rc, out = run([
        mim, 'test', 'dtl_mm', VOC_DEMO, '--checkpoint',
        str(ws / 'wd_mim' / 'epoch_1.pth'), '--work-dir', 'wd_mim_test'
    ], ws, env)
    assert 'pascal_voc/mAP:' in out
    rc, out = run([mim, 'search', 'dtl_mm'], ws, env)
    assert 'retinanet_swin-l_dtlv2-ls_fpn_voc0712' in out
    assert 'cascade-mask-rcnn_swin-b_fixed_fpn_3x_coco' in out
    # what docs/install.md says mim download ends with: no weights
    rc, out = run([
        mim, 'download', 'dtl_mm', '--config',
        'retinanet_swin-t_dtlv2-ls_toy-voc', '--dest', 'dl'
    ],
                  ws,
                  env,
                  check=False)
    assert rc != 0 and "but got {'weight'}" in out, out[-2000:]


@pytest.mark.slow
def test_entry_point_with_a_user_config_inheriting_dtl_mm(installed):
    """A config of the user's own, outside the checkout, inherits a shipped
    one through ``dtl_mm::``; the entry point trains, checks and tests it."""
    bin_dir, ws, env = installed
    (ws / 'my_voc.py').write_text(
        f"_base_ = 'dtl_mm::demo/{VOC_DEMO}'\n"
        'train_cfg = dict(max_epochs=1, val_interval=1)\n'
        'default_hooks = dict(checkpoint=dict(interval=1))\n')
    dtl = str(bin_dir / 'dtl-mm')
    rc, out = run([dtl, 'check-data', 'my_voc.py'], ws, env)
    assert 'ok' in out.splitlines(), out
    # the memory estimate, from the installed package (dtl_mm.analysis)
    rc, out = run([dtl, 'memory', 'my_voc.py', '--size', '128', '160'], ws,
                  env)
    assert '**predicted GPU peak**' in out, out[-2000:]
    rc, out = run([dtl, 'train', 'my_voc.py', '--work-dir', 'wd_cli'], ws, env)
    assert 'Epoch(train) [1]' in out
    rc, out = run([
        str(bin_dir / 'python'), '-m', 'dtl_mm', 'test', 'my_voc.py',
        'wd_cli/epoch_1.pth', '--work-dir', 'wd_cli_test'
    ], ws, env)
    assert 'pascal_voc/mAP:' in out
