"""What tools/train.py and tools/test.py share: config loading and the few
places where mmdet and mmseg differ (picked by the config's default_scope).
"""
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.logging import print_log

SCOPES = ('mmdet', 'mmseg')


def read_config(path):
    """``Config.fromfile`` of a config file, or of a shipped config named
    by its path under configs/ or its file name (as ``mim train`` accepts);
    a package base config that cannot be read for lack of pkg_resources
    names the fix."""
    from ..utils.config_packages import explain_config_error
    from ..utils.package_files import find_config, not_found_message
    found = find_config(path)
    if found is None:
        raise FileNotFoundError(not_found_message(path))
    if found != path:
        print_log(
            f'{path}: using the shipped config {found}', logger='current')
    try:
        return Config.fromfile(found)
    except Exception as e:
        clearer = explain_config_error(path, e)
        if clearer is None:
            raise
        raise clearer from e


def load_config(path, cfg_options=None, work_dir=None, launcher='none'):
    cfg = read_config(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(f'{path}: default_scope must be one of {SCOPES} '
                         f'(inherit an mmdet or mmseg base config), got '
                         f'{scope!r}')
    from ..checks.model_check import check_model_config
    check_model_config(cfg)  # DTLRunner checks again: that is cheap
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    if launcher != 'none':
        timeout = dist_timeout(cfg)
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        cfg.env_cfg.dist_cfg.timeout = timeout
        if not torch.cuda.is_available():
            _cpu_distributed(cfg)
    return cfg


def dist_timeout(cfg):
    """Seconds a rank waits in a collective for the others before failing:
    ``DTL_MM_DIST_TIMEOUT``, else ``env_cfg.dist_cfg.timeout``, else 1800
    (torch's default). Shorter ends a run sooner when a rank dies or hangs;
    it must stay longer than the slowest legitimate wait (evaluation or a
    checkpoint save on rank 0 while the others wait)."""
    value = os.environ.get('DTL_MM_DIST_TIMEOUT') or \
        cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout') or 1800
    try:
        value = float(value)
        assert value > 0
    except (ValueError, AssertionError):
        raise ValueError(f'distributed timeout must be a positive number of '
                         f'seconds, got {value!r} (DTL_MM_DIST_TIMEOUT or '
                         f'env_cfg.dist_cfg.timeout)') from None
    return value


def _replace_syncbn(node):
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for v in node.values():
            _replace_syncbn(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _replace_syncbn(v)


def _cpu_distributed(cfg):
    """Distributed training without GPUs (gloo): what mmengine's launcher
    assumes a GPU for (cuda.set_device, DDP device_ids, SyncBN)."""
    import datetime

    import torch.distributed as dist
    if not dist.is_initialized():
        # a rank that dies leaves the others waiting in a collective: the
        # wait is bounded by dist_timeout
        dist.init_process_group(
            backend='gloo',
            timeout=datetime.timedelta(seconds=cfg.env_cfg.dist_cfg.timeout))
    cfg.model_wrapper_cfg = dict(
        type='MMDistributedDataParallel',
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    _replace_syncbn(cfg.model)
    # gloo's threads exist before the data loader forks its workers; a fork
    # can then deadlock in a lock one of them held
    cfg.setdefault('env_cfg', {}).setdefault('mp_cfg', {})
    cfg.env_cfg.mp_cfg.mp_start_method = 'spawn'
    loader = cfg.get('train_dataloader') or {}
    if loader.get('num_workers', 0) > 0:  # spawn once, not every epoch
        loader['persistent_workers'] = True
    print_log(
        'no GPU: distributed run on gloo, SyncBN replaced by BN, '
        'data workers spawned',
        logger='current')


def setup_test_outputs(cfg, out=None, show=False, show_dir=None, wait_time=2):
    """--out / --show / --show-dir with mmdet's or mmseg's meaning."""
    if cfg.default_scope == 'mmdet':
        if out is not None:
            if not out.endswith(('.pkl', '.pickle')):
                raise ValueError('--out must be a .pkl file for detection')
            cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(
                cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
            cfg.test_evaluator.append(
                dict(type='DumpDetResults', out_file_path=out))
    elif out is not None:
        # mmseg: a folder for the predicted label maps
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    if show or show_dir:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise ValueError('--show/--show-dir need a visualization hook in '
                             'default_hooks')
        hook['draw'] = True
        if show:
            hook['show'] = True
            hook['wait_time'] = wait_time
        if show_dir and cfg.default_scope == 'mmdet':
            hook['test_out_dir'] = show_dir
        elif show_dir:
            cfg.visualizer['save_dir'] = show_dir
        if cfg.default_scope == 'mmseg':
            # mmseg 1.2's hook draws every `interval`-th test batch (50 by
            # default); mmdet's draws every image at test time, and so do we
            hook['interval'] = 1


def check_amp(cfg):
    """AMP needs a GPU: refused before anything is created."""
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper' and \
            not torch.cuda.is_available():
        raise SystemExit(
            'mixed precision (--amp, or optim_wrapper.type='
            '"AmpOptimWrapper") needs a CUDA GPU, and none is available; '
            'train without --amp on this machine')


def build_model(cfg):
    """The config's model, built in its scope's registry."""
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.default_scope)
    return MODELS.build(cfg.model)


def build_runner(cfg, check_data=True):
    """The config's runner (``runner_type``, as mmdet's tools build it),
    ``DTLRunner`` for a config that names none. ``check_data=False``
    (``--skip-data-check``) leaves the data files unread."""
    from mmengine.registry import RUNNERS

    from ..engine.runner import DTLRunner
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        DTLRunner.from_cfg(cfg)
    if not check_data:
        runner.check_data = False
    return runner


def add_common_args(parser):
    """The arguments tools/train.py and tools/test.py share with mmdet's."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    parser.add_argument(
        '--launcher',
        default='none',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        help='job launcher')
    parser.add_argument(
        '--skip-data-check',
        action='store_true',
        help='skip reading every annotation / label file '
        'up front')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_tool_args(parser):
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args
