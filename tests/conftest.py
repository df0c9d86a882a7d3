import http.server
import os
import sys
import tempfile
import threading

# Idle OpenMP threads sleep rather than spin (before torch loads OpenMP;
# the tools the tests run inherit it). On a machine whose cores are busy
# with other work, spinning threads wait for each other's time slices at
# every parallel region: a small Swin's forward took 100x longer, a short
# training 5x. The results are the same either way.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402
import torch  # noqa: E402

# The process as the shipped configs set it up (custom_imports); the
# runner they select changes nothing outside its own run
import dtl_mm  # noqa: E402,F401

TESTS = os.path.dirname(os.path.abspath(__file__))
# the benchmark scripts' measurement module
sys.path.insert(0, os.path.join(os.path.dirname(TESTS), 'tools', 'benchmarks'))
# under pytest-xdist (make test-fast) each worker takes one core
torch.set_num_threads(1 if os.environ.get('PYTEST_XDIST_WORKER'
                                          ) else min(2,
                                                     os.cpu_count() or 1))
# the data check's cache of file facts: one per test session (tools run as
# subprocesses inherit it), not the user's ~/.cache
os.environ['DTL_MM_CACHE_DIR'] = tempfile.mkdtemp(prefix='dtl_mm_cache_')


def _cache_external_config_lookup():
    """mmengine looks an ``mmdet::`` / ``mmseg::`` base config up (every
    shipped config has one) by reading the library's model index and all
    its metafiles, again for each config parsed: most of the time of
    Config.fromfile. The answer (a metafile entry, or the ValueError after
    which mmengine takes the path as it is) cannot change during a test
    session, so it is worked out once per (library, config)."""
    from mmengine.config import utils
    lookup = getattr(utils, '_get_cfg_metainfo', None)
    if lookup is None or getattr(lookup, 'memo', None) is not None:
        return
    memo = {}

    def cached(package_path, cfg_path):
        key = (package_path, cfg_path)
        if key not in memo:
            try:
                memo[key] = (lookup(package_path, cfg_path), None)
            except ValueError as e:
                memo[key] = (None, e)
        found, error = memo[key]
        if error is not None:
            raise ValueError(*error.args)
        return found

    cached.memo = memo
    utils._get_cfg_metainfo = cached


_cache_external_config_lookup()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ------------------------------------ shared end-to-end runs of the tools
@pytest.fixture(scope='session')
def toy_workspace(tmp_path_factory):
    """A folder with data/toy/{coco,voc,ade20k} (8 training and 4
    validation images each) where the tools run, as a user runs them from
    the folder that holds data/. Shared by the whole session: a test writes
    only into a work dir or file of its own name there (or under its
    tmp_path)."""
    from dtl_mm.testing.toy_data import MAKERS
    ws = tmp_path_factory.mktemp('toy_ws')
    for name, make in MAKERS.items():
        make(str(ws / 'data' / 'toy' / name), n_train=8, n_val=4)
    return ws


@pytest.fixture(scope='session')
def short_run(toy_workspace):
    """``short_run(task)``: the work dir of one short training of the
    task's demo config (tool_utils.SHORT) in toy_workspace. Each task trains
    once, on first use, and every test that only reads the run's outputs
    (tools/test.py, the libraries' own test tools, conversion, resuming in
    a copy) shares it; a test that changes the work dir works on a copy
    (tool_utils.copy_run)."""
    from helpers.tool_utils import FINAL, train
    runs = {}

    def get(task):
        if task not in runs:
            wd = toy_workspace / f'wd_{task}'
            out = train(toy_workspace, task, wd)
            assert 'Parameters (trainable / frozen)' in out
            assert (wd / 'last_checkpoint').read_text() == str(wd /
                                                               FINAL[task])
            runs[task] = wd
        return runs[task]

    return get


@pytest.fixture(scope='session')
def lean_run(toy_workspace):
    """A short VOC training run from a pretrained Swin file (the demo
    Swin's weights, saved in Microsoft's layout) in toy_workspace: its lean
    checkpoint, and the self-contained one tools/convert_checkpoint.py
    makes of it."""
    from helpers.checkpoint_utils import DEMO_SWIN
    from helpers.swin_utils import plain_swin, to_microsoft_layout
    from helpers.tool_utils import SHORT, pretrained_config, run_tool, tool
    ws = toy_workspace
    swin = plain_swin(**DEMO_SWIN)
    torch.save(to_microsoft_layout(swin.state_dict()), ws / 'swin_demo.pth')
    cfg = pretrained_config(ws, 'voc', ws / 'swin_demo.pth', 'voc_pre')
    wd = ws / 'wd_lean'
    run_tool(ws, tool('train.py'), cfg, '--work-dir', str(wd), '--cfg-options',
             *SHORT['voc'], 'randomness.seed=1')
    out = run_tool(ws, tool('convert_checkpoint.py'), cfg,
                   str(wd / 'epoch_1.pth'), str(ws / 'voc_full.pth'), '--to',
                   'full')
    full = next(ws.glob('voc_full-*.pth'))
    assert str(full) in out
    return dict(
        ws=ws,
        cfg=cfg,
        wd=wd,
        lean=wd / 'epoch_1.pth',
        full=full,
        pretrained=ws / 'swin_demo.pth')


# --------------------- a local http server (checkpoint downloads)
class _Server(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes) on 127.0.0.1; ``truncate`` paths
    announce the full length but send half; ``requests`` lists the GETs
    (downloads), HEADs (length queries) are not counted."""

    def __init__(self):
        super().__init__(('127.0.0.1', 0), _Handler)
        self.files, self.truncate, self.requests = {}, set(), []

    def url(self, path):
        return f'http://127.0.0.1:{self.server_address[1]}{path}'


class _Handler(http.server.BaseHTTPRequestHandler):

    def do_HEAD(self):
        self._headers()

    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        data = self._headers()
        if data is None:
            return
        if self.path in server.truncate:
            data = data[:len(data) // 2]
        self.wfile.write(data)

    def _headers(self):
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return None
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        return data

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = _Server()
    # a short poll: shutdown() waits for it
    thread = threading.Thread(
        target=srv.serve_forever, daemon=True, kwargs=dict(poll_interval=0.05))
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(home))
    return home


# --------------------------- toy data of one task, in the test's own folder
@pytest.fixture
def toy(tmp_path, monkeypatch):
    """``toy(name, **kw)``: toy data of one task (a key of
    tool_utils.DEMO) under tmp_path/data/toy, made the working folder (the
    demo configs use data/toy/... relative paths); returns the task's demo
    config. Each call makes the data anew."""
    from mmengine.config import Config

    from dtl_mm.testing.toy_data import MAKERS
    from helpers.tool_utils import DEMO, ROOT

    def make(name, **kw):
        monkeypatch.chdir(tmp_path)
        MAKERS[name](
            str(tmp_path / 'data' / 'toy' / name), n_train=4, n_val=2, **kw)
        return Config.fromfile(os.path.join(ROOT, DEMO[name]))

    return make


@pytest.fixture
def voc_run(short_run):
    """The session's short VOC demo run (conftest.short_run): (config
    path, work dir); tests that change the work dir take a copy
    (helpers.tool_utils.own_copy)."""
    from helpers.tool_utils import DEMO, ROOT
    return os.path.join(ROOT, DEMO["voc"]), short_run("voc")
