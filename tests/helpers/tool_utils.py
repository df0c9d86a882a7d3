"""Running the tools as subprocesses on the demo configs (shared by the
tool and reliability tests)."""
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

# the checkout: tests/helpers/ -> the repository
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = {
    'coco': 'configs/demo/cascade-mask-rcnn_swin-t_dtlv2-ls_toy-coco.py',
    'voc': 'configs/demo/retinanet_swin-t_dtlv2-ls_toy-voc.py',
    'ade20k': 'configs/demo/upernet_swin-t_dtlv2-ls_toy-ade20k.py',
}
METRIC_KEYS = {
    'coco': ('coco/bbox_mAP', 'coco/segm_mAP'),
    'voc': ('pascal_voc/mAP', ),
    'ade20k': ('mIoU', ),
}
# a few iterations: 8 images in batches of 4
SHORT = {
    'coco': ['train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1'],
    'voc': ['train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1'],
    'ade20k': [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2'
    ],
}
FINAL = {'coco': 'epoch_1.pth', 'voc': 'epoch_1.pth', 'ade20k': 'iter_2.pth'}


def run_tool(ws, script, *args, env=None, timeout=600):
    cmd = [sys.executable, script, *args]
    proc = subprocess.run(
        cmd,
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{" ".join(cmd)} failed:\n{out[-4000:]}'
    return out


def tool(name):
    return osp.join(ROOT, 'tools', name)


def train(ws, task, work_dir, *extra):
    """tools/train.py on the task's demo config, shortened to SHORT; the
    output of the run."""
    return run_tool(ws, tool('train.py'), osp.join(ROOT,
                                                   DEMO[task]), '--work-dir',
                    str(work_dir), '--cfg-options', *SHORT[task], *extra)


def pretrained_config(ws, task, pretrained, name):
    """What a user writes: the task's demo config with a pretrained trunk
    file; written to ``ws/<name>.py``, returns its path."""
    path = ws / f'{name}.py'
    path.write_text(f'_base_ = {osp.join(ROOT, DEMO[task])!r}\n'
                    f'model = dict(backbone=dict(init_cfg=dict(_delete_=True, '
                    f'type="Pretrained", '
                    f'checkpoint={str(pretrained)!r})))\n')
    return str(path)


def copy_run(src, dst):
    """A copy of the work dir ``src`` at ``dst`` whose last_checkpoint names
    the copy's own newest checkpoint, for a test that changes or resumes a
    shared run."""
    shutil.copytree(src, dst)
    last = osp.join(dst, 'last_checkpoint')
    with open(last) as f:
        name = osp.basename(f.read().strip())
    with open(last, 'w') as f:
        f.write(osp.join(str(dst), name))
    return dst


def free_port():
    """A TCP port nothing listens on at 127.0.0.1 now, chosen by the
    kernel: each distributed launch gets its own master port, so runs on one
    machine (other test sessions, other users) cannot collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_env(**extra):
    """The environment of a tools/dist_*.sh launch from the tests: this
    interpreter and checkout, a free master port (dist_run.sh reads PORT),
    one thread per rank."""
    return dict(
        os.environ,
        PYTHONPATH=ROOT,
        PYTHON=sys.executable,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1',
        **extra)


def dist_cmd(wd, *opts, task='voc'):
    """tools/dist_train.sh on two processes with the task's demo config."""
    return [
        'bash',
        tool('dist_train.sh'),
        osp.join(ROOT, DEMO[task]), '2', '--work-dir',
        str(wd), '--cfg-options', *opts
    ]


def dist_train(ws, wd, *opts, timeout=600):
    """Runs :func:`dist_cmd` in ``ws``; (return code, output)."""
    proc = subprocess.run(
        dist_cmd(wd, *opts),
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dist_env())
    return proc.returncode, proc.stdout + proc.stderr


def metrics_in(out, keys):
    found = {}
    for key in keys:
        m = re.findall(re.escape(key) + r': (-?[\d.]+)', out)
        assert m, f'{key} not in the test output:\n{out[-3000:]}'
        found[key] = float(m[-1])
    return found


def load_tool(name):
    """A tools/ script as a module (its functions, without running it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        osp.splitext(name)[0] + '_tool', tool(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def own_copy(voc_run, tmp_path):
    """A copy of the shared VOC run (the voc_run fixture) for a test that
    changes its work dir."""
    cfg, src = voc_run
    wd = copy_run(src, tmp_path / 'wd')
    assert (wd / 'last_checkpoint').read_text() == str(wd / 'epoch_1.pth')
    return cfg, wd


def toy_ade20k_train_then_test(ws, config, name):
    """Two iterations of a toy ADE20K config through tools/train.py, then
    its checkpoint through our tools/test.py and mmseg's own (each must
    print an mIoU in 0..100); the checkpoint's state dict."""
    import mmseg
    import torch
    wd = ws / f'wd_{name}'
    out = run_tool(ws, tool('train.py'), config, '--work-dir', str(wd),
                   '--cfg-options', 'train_cfg.max_iters=2',
                   'train_cfg.val_interval=2',
                   'default_hooks.checkpoint.interval=2')
    assert 'Parameters (trainable / frozen)' in out
    ckpt = wd / 'iter_2.pth'
    own = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
    for script in (tool('test.py'), own):
        out = run_tool(ws, script, config, str(ckpt), '--work-dir',
                       str(ws / f'test_{name}'))
        values = metrics_in(out, METRIC_KEYS['ade20k'])
        assert all(0 <= v <= 100 for v in values.values())
    return torch.load(ckpt, weights_only=False)['state_dict']
