"""Checks an environment against an OpenMMLab stack dtl_mm supports.

Used by ``tools/install.sh``: it passes the stack's requirements in
``DTL_WANT`` (one ``distribution specifier`` per line).  For the
``installed`` stack (a user's own environment) the tested ranges below are
checked instead, accepting the upstream or the onedl distributions.

``python tools/check_env.py [--quiet]`` prints one line per package and
what to do about each problem, then the devices: whether CUDA is
available, the GPUs and their architectures, and whether mmcv's compiled
ops were built with CUDA. The exit status is 0 when the plugin can run in
this environment (``--only``: the versions only, no imports).
``--versions`` prints ``distribution version``
of the wanted distributions (``-`` when absent) for the install plan.
"""
import argparse
import importlib
import importlib.metadata as md
import os
import sys
import warnings

try:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version
except ImportError:  # a bare venv: pip always carries a copy
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.version import Version

# The ranges the compatibility matrix has run (docs/install.md); the first
# name of each entry is the upstream distribution, the second the onedl
# fork's.
TESTED = [
    (('torch', ), '>=2.1'),
    (('numpy', ), '>=1.26'),
    (('mmengine', 'onedl-mmengine'), '>=0.10.7,<0.11'),
    (('mmcv', 'onedl-mmcv'), '>=2.1.0,<2.4'),
    (('mmdet', 'onedl-mmdetection'), '>=3.3.0,<3.6'),
    (('mmsegmentation', 'onedl-mmsegmentation'), '>=1.2.2,<1.5'),
]
# what the plugin imports; mmcv.ops needs mmcv's compiled extension
IMPORTS = ['torch', 'numpy', 'mmengine', 'mmcv', 'mmcv.ops', 'mmdet', 'mmseg']


def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def wanted():
    lines = os.environ.get('DTL_WANT', '').split('\n')
    if os.environ.get('DTL_STACK', 'installed') != 'installed':
        return [((ln.split()[0], ), ln.split()[1]) for ln in lines if ln]
    return TESTED


def check_versions(requirements):
    problems = []
    for dists, spec in requirements:
        found = [(d, version(d)) for d in dists if version(d)]
        if not found:
            problems.append(f'{dists[0]} is not installed (want {spec})')
            print(f'  missing  {dists[0]} {spec}')
            continue
        dist, ver = found[0]
        # a local build tag (2.1.2+cu121) still is that release
        ok = Version(ver.split('+')[0]) in SpecifierSet(spec)
        print(f"  {'ok' if ok else 'wrong':7}  {dist} {ver} (want {spec})")
        if not ok:
            problems.append(f'{dist} {ver} is installed, want {spec}')
        if len(found) > 1:
            problems.append('both %s are installed; they provide the same '
                            'module: uninstall one' %
                            ' and '.join(d for d, _ in found))
    return problems


def check_imports():
    problems = []
    if version('mmengine'):  # upstream mmengine reads configs through it
        try:
            with warnings.catch_warnings():  # its deprecation notice
                warnings.simplefilter('ignore')
                import pkg_resources  # noqa: F401
        except ImportError:
            problems.append('mmengine 0.10 needs pkg_resources, which '
                            'setuptools 82 removed: pip install '
                            '"setuptools<82"')
    modules = list(IMPORTS)
    if any(d == ('mmpretrain', ) for d, _ in wanted()):
        # mmpretrain imports torchvision, whose ops must
        # match torch's build; its models are what the ViT trunks use
        modules += ['torchvision', 'mmpretrain', 'mmpretrain.models']
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as e:  # any failure means the plugin cannot run
            msg = f'import {module} fails: {type(e).__name__}: {e}'
            if module == 'mmcv.ops':
                msg += (' (mmcv without its compiled ops; build it with '
                        'MMCV_WITH_OPS=1)')
            problems.append(msg)
            break
    return problems


# the distributions whose requirements decide whether the plugin runs: a
# broken requirement naming one of them (as the package or as what it
# requires) is a problem
RELEVANT = {
    'torch', 'torchvision', 'numpy', 'setuptools', 'mmengine', 'mmcv', 'mmdet',
    'mmsegmentation', 'mmpretrain', 'dtl-mm', 'onedl-mmengine', 'onedl-mmcv',
    'onedl-mmdetection', 'onedl-mmsegmentation'
}


def check_requirements():
    """What ``pip check`` finds broken among the relevant distributions: a
    package installed later can change one that torch or OpenMMLab needs
    (e.g. openmim's dependency openxlab pins an old setuptools)."""
    import re
    import subprocess
    try:
        out = subprocess.run([sys.executable, '-m', 'pip', 'check'],
                             capture_output=True,
                             text=True,
                             timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []  # no pip to ask: nothing to report
    problems = []
    for line in out.splitlines():
        names = re.findall(r'(?:^|requirement |requires )([A-Za-z0-9_.-]+)',
                           line)
        if {n.lower().replace('_', '-') for n in names} & RELEVANT:
            problems.append(f'pip check: {line.strip()}')
    return problems


def report_devices():
    """CUDA as torch sees it, and what mmcv's ops were compiled for (a CPU
    build of the ops cannot run RoIAlign & co. on a GPU)."""
    import torch
    cuda = torch.version.cuda
    print(f'  torch    {torch.__version__}: '
          f'{"built with CUDA " + cuda if cuda else "a CPU build"}; CUDA '
          f'{"available" if torch.cuda.is_available() else "not available"}')
    if torch.cuda.is_available():
        print(f'  torch\'s kernels: {" ".join(torch.cuda.get_arch_list())}')
    for i in range(torch.cuda.device_count() if cuda else 0):
        major, minor = torch.cuda.get_device_capability(i)
        print(f'  gpu {i}    {torch.cuda.get_device_name(i)}, architecture '
              f'sm_{major}{minor}')
    try:
        from mmcv.ops import get_compiling_cuda_version
        built = get_compiling_cuda_version()
    except Exception as e:  # no ops: reported by check_imports
        built = f'unknown ({type(e).__name__})'
    ops_cuda = built not in ('not available', '') and \
        not built.startswith('unknown')
    print('  mmcv.ops ' +
          ('built with CUDA ' + built if ops_cuda else 'CPU only (CUDA ' +
           built + ')'))
    if torch.cuda.is_available() and not ops_cuda:
        print('  note: mmcv.ops has no CUDA kernels: rebuild mmcv with '
              'FORCE_CUDA=1 and a CUDA toolkit (tools/install.sh does it '
              'when nvcc matches torch\'s CUDA)')


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0].replace('\n', ' '),
        epilog='Reads DTL_WANT / DTL_STACK (set by tools/install.sh); '
        'without them it checks the tested ranges.')
    p.add_argument(
        '--quiet', action='store_true', help='print nothing, exit status only')
    p.add_argument(
        '--only',
        action='store_true',
        help='check the versions only, no imports')
    p.add_argument(
        '--versions',
        action='store_true',
        help='print "distribution version" of the wanted distributions')
    return p.parse_args()


def main():
    args = parse_args()
    if args.versions:
        for dists, _ in wanted():
            print(dists[0], version(dists[0]) or '-')
        return 0
    if args.quiet:
        sys.stdout = open(os.devnull, 'w')
    print(f'{sys.executable} (python {sys.version.split()[0]}):')
    problems = check_versions(wanted())
    if args.only:  # versions only, no imports
        return 1 if problems else 0
    if os.environ.get('DTL_TESTS') == '1':
        problems += [
            f'{d} is not installed' for d in ('pytest', 'pytest-xdist')
            if not version(d)
        ]
    if not problems:
        problems = check_imports() + check_requirements()
    if not problems:
        try:
            import dtl_mm  # noqa: F401
        except ImportError as e:
            if os.environ.get('DTL_STACK', 'installed') != 'installed':
                problems.append(f'import dtl_mm fails: {e}')
            else:  # the stack is fine; only the plugin itself is missing
                print('  note: dtl_mm is not installed; run '
                      '`pip install --no-deps -e .` in the repository')
    if not problems:
        report_devices()
    for p in problems:
        print(f'  problem: {p}')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
