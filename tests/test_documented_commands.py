"""Every shell command of the README and the docs pages it links, run; and
the README's Python examples.

The commands are read out of the documents' ``bash`` blocks (a line ending
in ``\\`` continues on the next; ``#`` starts a comment), so a command that
changes or goes stale fails here. Each must have an entry in ``COMMANDS``,
and each entry must still be documented: a new command needs a way to be
run before it can be documented.

The benchmark pages (docs/benchmarks.md, docs/multitask.md) are left out:
their commands are measurements of minutes to hours at the paper's sizes,
and the scripts are tested at tiny sizes (tests/test_tools/
test_benchmark.py). docs/architecture.md and docs/faq.md have no command
blocks.

Most run here, in a folder holding the toy data, word for word or after
these substitutions, the only ones made (``substitute``):

- a placeholder config (``CONFIG``, ``my_config.py``) is the VOC demo
  config, or that config with a pretrained trunk file where the command
  needs one (lean checkpoints, a local copy of the trunk file);
- a config of configs/coco, configs/voc or configs/ade20k (a Swin-B/L
  recipe on the real data) is its task's demo config (a small Swin on the
  toy data), and ``/ckpts/<file>`` a pretrained trunk file written here;
- a training runs the short schedule of the other tool tests (one epoch,
  or two iterations), so ``epoch_8`` / ``epoch_36`` are ``epoch_1`` and
  ``work_dirs/...`` / ``work_dirs/x`` the run's own work dir;
- 8 GPUs are 2 CPU processes (the launchers' ``gloo`` fallback) and
  ``--device cuda`` is ``--device cpu``;
- ``images/`` is the toy validation images, ``voc.pth`` / ``ade20k.pth``
  / ``coco.pth`` the checkpoints of the toy runs;
- ``make demo`` is ``tools/demo.py --epochs 1`` (the demo itself, shorter).

The rest are run by the test named in their entry: CI's own test command,
the wheel and ``mim`` commands (which need a fresh environment), and the
custom-data guide's blocks (tests/test_tools/test_custom_dataset.py, with
data of its own).
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from helpers.tool_utils import (DEMO, FINAL, METRIC_KEYS, ROOT, SHORT,
                                dist_env, metrics_in)

pytestmark = pytest.mark.slow

DOCUMENTS = ('README.md', 'docs/install.md', 'docs/configs.md',
             'docs/training.md', 'docs/checkpoints.md', 'docs/inference.md',
             'docs/testing.md', 'docs/custom_dataset.md')
VOC_CONFIG = DEMO['voc']
TOY_CONFIG = {
    'configs/coco/': DEMO['coco'],
    'configs/voc/': DEMO['voc'],
    'configs/ade20k/': DEMO['ade20k'],
}


def documented_commands():
    """[(document, command)] of every bash block, in order."""
    found = []
    for doc in DOCUMENTS:
        with open(osp.join(ROOT, doc), encoding='utf-8') as f:
            text = f.read()
        for block in re.findall(r'^```(?:bash|sh)\n(.*?)^```', text,
                                re.S | re.M):
            lines = []
            for line in block.replace('\\\n', ' ').splitlines():
                line = re.sub(r'\s+#.*$', '', line).strip()
                if line and not line.startswith('#'):
                    lines.append(' '.join(line.split()))
            found += [(doc, line) for line in lines]
    return found


# command -> ('run', kind) or ('test', test node id that runs it)
COVERED = {
    'make test':
    '.ci/run (CI runs the README test command itself)',
    'pip wheel --no-deps -w dist .':
    'tests/test_package.py::test_wheel_runs_outside_the_checkout',
    'pip install "dist/dtl_mm-0.1.0-py3-none-any.whl[openmmlab,mim]"':
    'tests/test_package.py::test_wheel_runs_outside_the_checkout',
    'mim train dtl_mm retinanet_swin-t_dtlv2-ls_toy-voc.py --work-dir wd':
    'tests/test_package.py::test_mim_trains_tests_and_searches',
    'mim test dtl_mm retinanet_swin-t_dtlv2-ls_toy-voc.py --checkpoint '
    'wd/epoch_8.pth':
    'tests/test_package.py::test_mim_trains_tests_and_searches',
    'mim search dtl_mm':
    'tests/test_package.py::test_mim_trains_tests_and_searches',
}
GUIDE_TEST = 'tests/test_tools/test_custom_dataset.py'


def how(doc, command):
    """'run', or the test that runs ``command``."""
    if command in COVERED:
        return COVERED[command]
    if doc == 'docs/custom_dataset.md':
        return GUIDE_TEST
    return 'run'


def test_every_documented_command_has_a_way_to_run():
    commands = documented_commands()
    assert len(commands) > 20
    for doc, command in commands:
        way = how(doc, command)
        if way == 'run':
            assert runner_for(command) is not None, (
                f'{doc}: no way to run `{command}` in this test; add it '
                f'to RUNNERS or COVERED')
        elif way.startswith('tests/'):
            path, _, name = way.partition('::')
            text = open(osp.join(ROOT, path)).read()
            assert not name or f'def {name}(' in text, way
            if way == GUIDE_TEST:
                # the guide test runs each of the guide's bash blocks
                guide = open(osp.join(ROOT, doc)).read()
                blocks = re.findall(r'<!-- guide-test: ([\w-]+) -->\n```bash',
                                    guide)
                assert len(blocks) == guide.count('```bash'), (
                    f'{doc}: a bash block without a guide-test mark')
                assert all(f"'{b}'" in text for b in blocks), blocks
    # every entry still documented
    texts = {c for _, c in commands}
    assert set(COVERED) <= texts, set(COVERED) - texts
    assert 'make test' in open(osp.join(ROOT, '.ci', 'run')).read()


# ------------------------------------------------------------ running
def substitute(command, paths):
    """The command as it runs here (the module docstring's list)."""
    out = command
    for placeholder in ('CONFIG CKPT', ):
        out = out.replace(placeholder, f'{VOC_CONFIG} {paths["voc"]}')
    out = re.sub(r'(?<![\w/])(CONFIG|my_config\.py)(?![\w.])',
                 paths.get('config', VOC_CONFIG), out)
    for real, toy in TOY_CONFIG.items():
        out = re.sub(re.escape(real) + r'[\w.-]+\.py', toy, out)
    out = re.sub(r'/ckpts/\S+\.pth', str(paths.get('pretrained', '')), out)
    out = out.replace('work_dirs/x/epoch_36.pth', str(paths.get('lean', '')))
    out = re.sub(r'work_dirs/\S*/epoch_(8|36)\.pth',
                 lambda m: str(paths['voc']), out)
    out = re.sub(r' 8$', ' 2', out)
    out = out.replace('--device cuda', '--device cpu')
    out = out.replace("'images/*.jpg'", f"'{paths['images']}/*.jpg'")
    out = out.replace(' images/ ', f' {paths["images"]}/ ')
    for task in ('voc', 'ade20k', 'coco'):
        out = out.replace(f' {task}.pth', f' {paths[task]}')
    return out


def run(ws, command, env=None, check=True):
    """``command`` as a shell would run it in ``ws``; (status, output).
    This environment's python and console scripts come first on PATH."""
    full_env = dict(os.environ, PYTHON=sys.executable)
    full_env.update(env or {})
    full_env['PATH'] = osp.dirname(sys.executable) + os.pathsep + \
        full_env['PATH']
    proc = subprocess.run(['bash', '-c', command],
                          cwd=ws,
                          capture_output=True,
                          text=True,
                          timeout=900,
                          env=full_env)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, f'`{command}` failed:\n{out[-4000:]}'
    return proc.returncode, out


@pytest.fixture(scope='module')
def paths(toy_workspace, short_run, lean_run):
    """Where the commands run (a folder laid out like the checkout: its
    tools/ and configs/, and the toy data), and the files they name."""
    ws = toy_workspace
    here = ws / 'checkout'
    here.mkdir(exist_ok=True)
    for name in ('tools', 'configs'):
        if not (here / name).exists():
            os.symlink(osp.join(ROOT, name), here / name)
    if not (here / 'data').exists():
        os.symlink(ws / 'data', here / 'data')
    return dict(
        ws=here,
        voc=short_run('voc') / FINAL['voc'],
        ade20k=short_run('ade20k') / FINAL['ade20k'],
        coco=short_run('coco') / FINAL['coco'],
        images=ws / 'data' / 'toy' / 'voc' / 'VOCdevkit' / 'VOC2012' /
        'JPEGImages',
        pretrained=lean_run['pretrained'],
        pretrained_config=lean_run['cfg'],
        lean=lean_run['lean'],
        full=lean_run['full'])


def runner_for(command):
    """The function that runs ``command`` (the first whose pattern
    matches), or None."""
    for pattern, fn in RUNNERS:
        if re.match(pattern, command):
            return fn
    return None


def run_plain(ws, command, paths):
    """A command whose output only needs a clean exit: toy data, the
    environment report (in a folder of its own: the toy data of the other
    tests stay as they are)."""
    here = ws / 'doc_plain'
    here.mkdir(exist_ok=True)
    run(here, substitute(command, paths))


def config_in(command):
    """The demo config a (substituted) command runs: by its path or by its
    file name."""
    return next(c for c in DEMO.values() if osp.basename(c) in command)


def with_options(command, *options):
    """``command`` with ``options`` added to its --cfg-options (one
    --cfg-options: a second would replace the first)."""
    if '--cfg-options' in command:
        return command.replace('--cfg-options',
                               '--cfg-options ' + ' '.join(options), 1)
    return f'{command} --cfg-options {" ".join(options)}'


def run_train(ws, command, paths):
    cmd = substitute(command, paths)
    config = config_in(cmd)
    task = next(t for t, c in DEMO.items() if c == config)
    if '/ckpts/' in command:
        # a local trunk file needs a config that loads one
        cmd, task = cmd.replace(config, paths['pretrained_config']), 'voc'
    name = re.sub(r'\W+', '_', command)[-50:]
    cmd = with_options(f'{cmd} --work-dir wd_doc_{name}', *SHORT[task])
    env = dist_env() if cmd.startswith('bash') else None
    status, out = run(ws, cmd, env)
    assert re.search(r'(Epoch|Iter)\(train\)', out), out[-3000:]
    if cmd.startswith('bash'):
        assert 'distributed run on gloo' in out, out[-3000:]


def run_test(ws, command, paths):
    cmd = substitute(command, paths)
    task = next(t for t, c in DEMO.items() if c == config_in(cmd))
    cmd = cmd.replace(str(paths['voc']), str(paths[task]))
    env = dist_env() if cmd.startswith('bash') else None
    status, out = run(ws, f'{cmd} --work-dir wd_doc_test_{task}', env)
    metrics_in(out, METRIC_KEYS[task])


def run_config_verb(ws, command, paths):
    """``dtl-mm check-data|params my_config.py``: the placeholder typed as
    written is a one-line usage error naming it; a shipped config's name
    in its place works."""
    status, out = run(ws, command, check=False)
    assert status == 2, out
    assert 'Traceback' not in out
    assert 'my_config.py: no such config file' in out
    status, out = run(ws, substitute(command, paths))
    if 'check-data' in command:
        assert 'ok' in out.splitlines(), out[-3000:]
    else:
        assert re.search(r'side network +[\d,]+ +0', out), out


def run_convert(ws, command, paths):
    """convert_checkpoint.py on the lean run (its config has the trunk
    file): lean -> full, then full -> lean without the optimizer."""
    cmd = substitute(command, dict(paths, config=paths['pretrained_config']))
    cmd = cmd.replace('dtl_full-1a2b3c4d.pth', str(paths['full']))
    cmd = cmd.replace(' dtl_full.pth ', f' {ws}/doc_full.pth ')
    cmd = cmd.replace(' dtl.pth ', f' {ws}/doc_lean.pth ')
    status, out = run(ws, cmd)
    assert re.search(r'(lean|full) checkpoint written: \S+-[0-9a-f]{8}\.pth',
                     out), out


def run_infer(ws, command, paths):
    out_dir = ws / f'doc_out_{len(command)}'
    cmd = substitute(command, paths).replace('--out-dir out/',
                                             f'--out-dir {out_dir}/')
    run(ws, cmd)
    names = os.listdir(paths['images'])
    tasks = command.count('--task') or 1
    written = [n for n in os.listdir(out_dir) if n.endswith('.json')] \
        if tasks == 1 else [
            n for d in os.listdir(out_dir)
            if osp.isdir(out_dir / d) for n in os.listdir(out_dir / d)
            if n.endswith('.json')]
    assert len(written) == len(names) * tasks, (written, names)


def run_memory(ws, command, paths):
    """``dtl-mm memory`` on the config's demo counterpart: the parts, the
    prediction and, with --gpu-mem, what fits."""
    status, out = run(ws, substitute(command, paths))
    assert '**predicted GPU peak**' in out, out[-3000:]
    if '--gpu-mem' in command:
        assert re.search(r'- as configured: (fits|does not fit) at batch',
                         out), out[-3000:]


def run_demo(ws, command, paths):
    status, out = run(
        ROOT, f'{sys.executable} tools/demo.py --epochs 1 '
        f'--work-dir {ws}/wd_doc_demo')
    assert 'coco/bbox_mAP' in out and 'done in' in out


RUNNERS = [
    (r'make demo$', run_demo),
    (r'dtl-mm (toy-data|env)\b', run_plain),
    (r'dtl-mm (check-data|params) my_config\.py$', run_config_verb),
    (r'(dtl-mm train|python tools/train\.py|bash tools/dist_train\.sh)\b',
     run_train),
    (r'(dtl-mm test|python tools/test\.py|bash tools/dist_test\.sh)\b',
     run_test),
    (r'python tools/convert_checkpoint\.py\b', run_convert),
    (r'python tools/infer\.py\b', run_infer),
    (r'(dtl-mm memory|python tools/memory\.py)\b', run_memory),
]


def runnable():
    """The commands this module runs, each once (a command documented on
    two pages runs once)."""
    seen, out = set(), []
    for doc, command in documented_commands():
        if how(doc, command) == 'run' and command not in seen:
            seen.add(command)
            out.append((doc, command))
    return out


@pytest.mark.parametrize(
    'doc,command', runnable(), ids=[c[:70] for _, c in runnable()])
def test_documented_command_runs(paths, doc, command):
    runner_for(command)(paths['ws'], command, paths)


# ------------------------------------------------- the README's Python
# the checkpoints the examples name: those of the toy runs (the short
# schedule of the other tool tests)
EXAMPLE_CHECKPOINTS = {
    'work_dirs/retinanet_swin-t_dtlv2-ls_toy-voc/epoch_8.pth': 'voc',
    'work_dirs/upernet_swin-t_dtlv2-ls_toy-ade20k/iter_120.pth': 'ade20k',
}


def readme_examples():
    """{name: code} of the README's Python blocks marked for this test."""
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    return dict(
        re.findall(r'<!-- readme-test: ([\w-]+) -->\n```python\n(.*?)```',
                   text, re.S))


def test_readme_has_its_python_examples():
    assert set(readme_examples()) == {'single-task', 'multi-task', 'train'}


@pytest.mark.parametrize('name', ['single-task', 'multi-task', 'train'])
def test_readme_python_example_runs(paths, name):
    """Each example as written, in a folder like the checkout (configs/,
    data/ and the checkpoints it names)."""
    code = readme_examples()[name]
    here = paths['ws'].parent / 'readme'
    if not here.exists():
        here.mkdir()
        os.symlink(osp.join(ROOT, 'configs'), here / 'configs')
        os.symlink(paths['ws'] / 'data', here / 'data')
        for path, task in EXAMPLE_CHECKPOINTS.items():
            os.makedirs(here / osp.dirname(path))
            os.symlink(paths[task], here / path)
    for path in re.findall(r'work_dirs/[\w./-]+\.pth', code):
        assert path in EXAMPLE_CHECKPOINTS, path
    status, out = run(here, f'{sys.executable} - <<\'EOF\'\n{code}EOF\n')
    images = sorted(os.listdir(paths['images']))
    if name == 'single-task':
        # mmdet's inferencer: a drawing and the predictions per image
        assert len(os.listdir(here / 'out/single/vis')) == len(images)
        assert len(os.listdir(here / 'out/single/preds')) == len(images)
    elif name == 'multi-task':
        for task in ('retinanet_swin-t_dtlv2-ls_toy-voc',
                     'upernet_swin-t_dtlv2-ls_toy-ade20k'):
            written = [
                n for n in os.listdir(here / 'out/multi' / task)
                if n.endswith('.json')
            ]
            assert len(written) == len(images), (task, written)
    else:
        assert (here / 'work_dirs/from_python/epoch_8.pth').is_file()
        assert 'pascal_voc/mAP' in out
