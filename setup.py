"""Packaging of the dtl_mm plugin.

The OpenMMLab stack is not a hard dependency: mmcv must be built from source
with its compiled ops against the user's torch, which pip cannot do, and
the maintained fork publishes the same modules under other distribution
names (``onedl-mmcv`` ...), which pip would not recognise.
``tools/install.sh`` installs a tested stack; the extras below name the
tested versions for users who manage their environment themselves.
"""
import os.path as osp
from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def read_version():
    namespace = {}
    with open(osp.join(ROOT, 'dtl_mm', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_readme():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


setup(
    name='dtl_mm',
    version=read_version(),
    description=('Disentangled Transfer Learning (DTL) for Swin backbones '
                 'in mmdetection and mmsegmentation'),
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    url='https://doi.org/10.1109/TPAMI.2025.3616318',
    project_urls={'Paper': 'https://doi.org/10.1109/TPAMI.2025.3616318'},
    license='Apache-2.0',
    keywords='parameter-efficient transfer learning, detection, '
    'segmentation, swin, openmmlab',
    classifiers=[
        'License :: OSI Approved :: Apache Software License',
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    packages=find_packages(include=['dtl_mm', 'dtl_mm.*']),
    include_package_data=True,
    python_requires='>=3.10',
    # torch is left to the user (a CUDA build, or CPU from tools/install.sh)
    install_requires=['numpy>=1.26'],
    extras_require={
        'tests': ['pytest'],
        # the tested OpenMMLab versions; mmcv with its ops comes first
        # (tools/install.sh builds it: mmcv 2.1.0 / onedl-mmcv 2.3.6)
        'openmmlab': [
            'mmengine>=0.10.7,<0.11', 'mmdet>=3.3.0,<3.4',
            'mmsegmentation>=1.2.2,<1.3'
        ],
        'onedl': [
            'onedl-mmengine>=0.10.12,<0.11', 'onedl-mmdetection>=3.5.1,<3.6',
            'onedl-mmsegmentation>=1.4.2,<1.5'
        ],
    },
    zip_safe=False,
)
