"""Packaging of the dtl_mm plugin.

Like mmdet and mmseg, the wheel carries the configs, the tools and
``model-index.yml`` in ``dtl_mm/.mim/`` (copied there when a wheel or an
sdist is built, linked for an editable install), which is where mim and
mmengine's ``dtl_mm::`` base configs look for them.

The OpenMMLab stack is not a hard dependency: mmcv must be built from source
with its compiled ops against the user's torch, which pip cannot do, and
the maintained fork publishes the same modules under other distribution
names (``onedl-mmcv`` ...), which pip would not recognise.
``tools/install.sh`` installs a tested stack; the extras below name the
tested versions for users who manage their environment themselves.
"""
import os
import os.path as osp
import shutil
import sys
from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
# what dtl_mm/.mim/ holds: what `mim train|test|search dtl_mm` and
# `_base_ = 'dtl_mm::...'` read
MIM_FILES = ('configs', 'tools', 'model-index.yml')
# the tested OpenMMLab versions (mmcv with its ops comes first: see below)
# and what mmcv's wheel needs at run time (tools/install.sh installs it
# with --no-deps; the same list as its EXTRA); mmseg's model package imports
# ftfy and regex; mmengine 0.10.7 reads `mmdet::` / `mmseg::` / `dtl_mm::`
# configs through pkg_resources, which setuptools 82 removed
OPENMMLAB = [
    'mmengine>=0.10.7,<0.11', 'mmdet>=3.3.0,<3.4',
    'mmsegmentation>=1.2.2,<1.3', 'setuptools<82', 'addict', 'packaging',
    'Pillow', 'pyyaml', 'yapf', 'opencv-python-headless', 'ftfy', 'regex',
    'matplotlib'
]


def read_version():
    namespace = {}
    with open(osp.join(ROOT, 'dtl_mm', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def add_mim_extension():
    """Puts MIM_FILES into dtl_mm/.mim: copies for a wheel or an sdist,
    relative symlinks for an editable install (edits show at once); as
    mmdet's setup.py does. Other commands (egg_info ...) change nothing."""
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink' if os.name != 'nt' else 'copy'
    elif {'sdist', 'bdist_wheel', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(ROOT, 'dtl_mm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(ROOT, name), osp.join(mim_path, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isdir(src):
            shutil.copytree(
                src, dst, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(src, dst)


def read_readme():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


add_mim_extension()
setup(
    name='dtl_mm',
    version=read_version(),
    description=('Disentangled Transfer Learning (DTL) for Swin, ViT / DeiT '
                 'and DINOv2 backbones in mmdetection and mmsegmentation'),
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    url='https://doi.org/10.1109/TPAMI.2025.3616318',
    project_urls={'Paper': 'https://doi.org/10.1109/TPAMI.2025.3616318'},
    license='Apache-2.0',
    keywords='parameter-efficient transfer learning, detection, '
    'segmentation, swin, vit, deit, dinov2, openmmlab',
    classifiers=[
        'License :: OSI Approved :: Apache Software License',
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    packages=find_packages(include=['dtl_mm', 'dtl_mm.*']),
    include_package_data=True,  # dtl_mm/.mim (MANIFEST.in)
    python_requires='>=3.10',
    # torch is left to the user (a CUDA build, or CPU from tools/install.sh)
    install_requires=['numpy>=1.26'],
    entry_points={'console_scripts': ['dtl-mm=dtl_mm.cli:main']},
    extras_require={
        'tests': ['pytest'],
        # mmcv with its ops must be installed first (tools/install.sh
        # builds it: mmcv 2.1.0 / onedl-mmcv 2.3.6)
        'openmmlab':
        OPENMMLAB,
        # `mim train|test|search dtl_mm`; mim imports pkg_resources too
        'mim': ['openmim>=0.3.9', 'setuptools<82'],
        # mmdet's / mmseg's tools/analysis_tools: analyze_logs.py needs
        # seaborn, benchmark.py psutil
        'analysis': ['seaborn', 'psutil'],
        'onedl': [
            'onedl-mmengine>=0.10.12,<0.11', 'onedl-mmdetection>=3.5.1,<3.6',
            'onedl-mmsegmentation>=1.4.2,<1.5'
        ],
    },
    zip_safe=False,
)
