from setuptools import find_packages, setup

setup(
    name='dtl_mm',
    version='0.1.0',
    description='Disentangled Transfer Learning (DTL) for mmdet / mmsegmentation',
    packages=find_packages(include=['dtl_mm', 'dtl_mm.*']),
    python_requires='>=3.9',
    # The OpenMMLab stack is installed by tools/install.sh: mmcv must be built
    # from source against the user's torch, which pip's resolver cannot do.
    install_requires=[],
)
