"""Every GPU measurement of docs/benchmarks.md in one command, within a time
budget: for a session that is lent a GPU for a few minutes.

    python tools/benchmarks/gpu_suite.py --out OUT [--budget-s 540]
    python tools/benchmarks/gpu_suite.py --out OUT --device cpu --tiny \
        --scale 0.1 --repeats 1            # the same steps, tiny, on a CPU

Steps, each in its own processes, in this order (the most wanted first), as
many as the budget allows:

1. the frontier at the paper's sizes, per family (VOC, ADE20K, COCO):
   full fine-tuning and AdaptFormer with their best checkpointing, DTLv2-LS
   plain, selective and all-checkpointed with the trunk recomputed; GPU
   peak, step time and bs-1 backbone inference throughput (`fixed`, the
   plain frozen Swin, is the throughput reference) — memory_speed.py;
2. mixed precision, fp16 and bf16: full fine-tuning and DTLv2-LS —
   memory_speed.py --amp;
3. the memory prediction against the peaks just measured —
   memory_prediction.py.

A family whose models need what the environment lacks (COCO's RoIAlign
needs mmcv's CUDA ops) fails alone; the others go on. Everything lands in
OUT (results.md / results.json per step, and summary.md: what ran, how
long, what failed and why), ready to commit.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
from measure import script_parser  # noqa: E402

FAMILIES = ('voc', 'ade20k', 'coco')
FRONTIER = ('full', 'full+cp+heads', 'adaptformer+cp', 'fixed', 'dtlv2-ls',
            'dtlv2-ls+sel', 'dtlv2-ls+cp+heads+trunk')
AMP_VARIANTS = ('full', 'dtlv2-ls')


def parse_args(argv=None):
    p = script_parser(__doc__)
    p.add_argument('--out', required=True)
    p.add_argument('--device', default='cuda')
    p.add_argument(
        '--budget-s',
        type=float,
        default=540,
        help='stop starting steps after this many seconds')
    p.add_argument('--families', nargs='+', default=list(FAMILIES))
    p.add_argument(
        '--variants',
        nargs='+',
        help='only these configurations, in every step (default: '
        f'{" ".join(FRONTIER)}; AMP: {" ".join(AMP_VARIANTS)})')
    p.add_argument('--tiny', action='store_true')
    p.add_argument('--scale', type=float, default=1.0)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument(
        '--torch-focal-loss',
        action='store_true',
        help="memory_speed.py's option, for an mmcv without CUDA ops")
    return p.parse_args(argv)


class Suite:

    def __init__(self, args):
        self.args = args
        self.started = time.time()
        self.log = []  # (step, seconds, status)

    def left(self):
        return self.args.budget_s - (time.time() - self.started)

    def run(self, name, script, *script_args):
        """One step as a subprocess, killed at the end of the budget."""
        if self.left() <= 0:
            self.log.append((name, 0, 'not run: the budget was spent'))
            return False
        cmd = [sys.executable, osp.join(HERE, script), *script_args]
        t = time.time()
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=self.left(),
                env=dict(os.environ, PYTHONPATH=HERE))
            ok = proc.returncode == 0
            why = 'ok' if ok else 'failed: ' + (
                proc.stderr.strip().splitlines() or ['?'])[-1][:300]
        except subprocess.TimeoutExpired:
            ok, why = False, 'stopped: the budget ran out'
        self.log.append((name, time.time() - t, why))
        print(f'{name}: {why} ({time.time() - t:.0f} s)', flush=True)
        return ok

    def common(self):
        a = self.args
        return ['--device', a.device, '--scale', str(a.scale), '--repeats',
                str(a.repeats)] + (['--tiny'] if a.tiny else []) + \
            (['--torch-focal-loss'] if a.torch_focal_loss else [])

    def frontier(self, family):
        out = osp.join(self.args.out, f'frontier_{family}')
        ok = self.run(f'frontier {family}', 'memory_speed.py', '--out', out,
                      '--family', family, '--variants',
                      *(self.args.variants
                        or FRONTIER), '--infer-batches', '1', *self.common())
        return osp.join(out, 'results.json') if ok else None

    def amp(self, family, dtype):
        out = osp.join(self.args.out, f'amp_{dtype}_{family}')
        self.run(f'AMP {dtype} {family}', 'memory_speed.py', '--out', out,
                 '--family', family, '--variants',
                 *(self.args.variants or AMP_VARIANTS), '--amp', dtype,
                 *self.common())

    def prediction(self, measured):
        merged = {}
        for path in measured:
            with open(path) as f:
                merged.update(json.load(f))
        path = osp.join(self.args.out, 'measured_frontier.json')
        with open(path, 'w') as f:
            json.dump(merged, f, indent=1)
        self.run('memory prediction', 'memory_prediction.py', '--measured',
                 path, '--out', osp.join(self.args.out, 'prediction'))

    def summary(self):
        lines = [
            f'device {self.args.device}; budget {self.args.budget_s:.0f} s; '
            f'total {time.time() - self.started:.0f} s', '',
            '| step | seconds | status |', '|---|---|---|'
        ] + [f'| {n} | {s:.0f} | {w} |' for n, s, w in self.log]
        with open(osp.join(self.args.out, 'summary.md'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        print('\n'.join(lines))


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    suite = Suite(args)
    measured = [suite.frontier(f) for f in args.families]
    for dtype in ('fp16', 'bf16'):
        for family in args.families:
            suite.amp(family, dtype)
    measured = [m for m in measured if m]
    if measured:
        suite.prediction(measured)
    suite.summary()
    return 0 if all(w == 'ok' for _, _, w in suite.log) else 1


if __name__ == '__main__':
    sys.exit(main())
