"""Where the configs, tools and model index are: ``dtl_mm/.mim/`` in an
installed package (setup.py puts them there, as mmdet's does), else the
checkout this package is imported from."""
import os.path as osp

PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))  # dtl_mm/
MIM = osp.join(PACKAGE, '.mim')
CHECKOUT = osp.dirname(PACKAGE)


def shipped(name):
    """``configs``, ``tools`` or ``model-index.yml`` of this package."""
    for root in (MIM, CHECKOUT):
        path = osp.join(root, name)
        if osp.exists(path):
            return path
    raise FileNotFoundError(
        f'{name} not found in {MIM} nor in {CHECKOUT}: a wheel built '
        f'without setup.py (which copies it into dtl_mm/.mim); reinstall '
        f'with `pip install .` or from a wheel built by `pip wheel .`')


def find_config(path):
    """``path`` itself when it is a file, else the shipped config it names:
    a path relative to the configs folder (``demo/xxx.py``,
    ``configs/demo/xxx.py``, ``dtl_mm::demo/xxx.py``) or a bare file name
    (as ``mim train`` accepts), with or without ``.py`` (as a model name
    of the model index). ``None`` when there is no such config; a
    ValueError naming them when a bare name fits several."""
    if osp.isfile(path):
        return path
    rel = path.split('::', 1)[1] if path.startswith('dtl_mm::') else path
    rel = rel[len('configs/'):] if rel.startswith('configs/') else rel
    if not rel.endswith(('.py', '.json', '.yml', '.yaml')):
        rel += '.py'  # a model name
    configs = shipped('configs')
    if osp.isfile(osp.join(configs, rel)):
        return osp.join(configs, rel)
    if osp.sep not in rel:
        import glob
        found = glob.glob(osp.join(configs, '**', rel), recursive=True)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            listed = ', '.join(sorted(osp.relpath(f, configs) for f in found))
            raise ValueError(f'{path}: ambiguous, several shipped configs '
                             f'have this name ({listed}); give one with '
                             f'its folder')
    return None


def not_found_message(path):
    """What to say of a config argument that names no config."""
    return (f'{path}: no such config file, nor a config shipped with dtl_mm '
            f'(give a path to your config, or a shipped one by its path '
            f'under configs/ or its file name, e.g. '
            f'retinanet_swin-t_dtlv2-ls_toy-voc.py; `mim search dtl_mm` '
            f'lists them)')


def config_arg(path):
    """An argparse ``type`` for a config argument: ``path`` unchanged when
    :func:`find_config` finds it, else a usage error naming it (argparse
    prints it in one line and exits with status 2)."""
    import argparse
    try:
        found = find_config(path)
    except ValueError as e:  # ambiguous
        raise argparse.ArgumentTypeError(str(e)) from None
    if found is None:
        raise argparse.ArgumentTypeError(not_found_message(path))
    return path
