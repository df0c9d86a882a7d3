"""Base configs from packages: ``dtl_mm::`` (ours), and ``mmseg::`` when a
fork provides ``mmseg``.

mmengine reads a ``package::path`` base config from
``<package>/.mim/configs/path`` of the distribution its ``MODULE2PACKAGE``
table names for ``package``, and refuses packages missing from the table
("mmengine does not support to load dtl_mm config").
:func:`register_own_configs` adds ``dtl_mm`` to the table; the table is read
when a config is parsed, so this works wherever ``dtl_mm`` is imported
before the config is read (our tools, ``dtl-mm`` / ``python -m dtl_mm``,
``mim train dtl_mm``), not in a tool that parses the config first (mmdet's
and mmseg's own ``tools/train.py``: there a relative or absolute path to
the installed config is needed, see
:func:`dtl_mm.utils.package_files.shipped`).

mmengine resolves a ``package::path`` config through the *distribution* name
in ``mmengine.config.utils.MODULE2PACKAGE`` (``mmseg`` -> ``mmsegmentation``)
and fails with "mmsegmentation is not installed" when the module comes from
a fork published under another name, such as ``onedl-mmsegmentation``
(``mmdet`` happens to work there only because mmengine falls back to the
module name, which for mmdet is also the upstream distribution name).

Importing :mod:`dtl_mm` (our tools do it before they read a config) points
such entries at the distribution that actually provides the module.  Only
entries that would fail are changed: when the upstream distribution is
installed, or the module is not installed at all, mmengine keeps its own
table, so nothing changes for any other environment or package.  Configs
are parsed before ``custom_imports`` runs, so code that reads our configs
with ``Config.fromfile`` on the fork imports ``dtl_mm`` first.
"""
import importlib.metadata as md
import importlib.util


def _is_distribution(name):
    try:
        md.distribution(name)
        return True
    except md.PackageNotFoundError:
        return False


def _resolves(package):
    """What mmengine's ``is_installed`` accepts: a distribution of that
    name, or else a module of that name."""
    return (_is_distribution(package)
            or importlib.util.find_spec(package) is not None)


# what MODULE2PACKAGE names for ``dtl_mm``: a module, not a distribution.
# mmengine looks a distribution up in site-packages, where an editable
# install (tools/install.sh's) has no dtl_mm folder; a name that is no
# distribution makes it fall back to the module's own folder, i.e. the
# dtl_mm package actually imported (a wheel's copy, a checkout's links).
# Any module directly in that folder serves; mmengine takes its folder.
CONFIG_MODULE = 'dtl_mm.version'


def register_own_configs():
    """``dtl_mm::path`` -> ``<the imported dtl_mm>/.mim/configs/path``
    (idempotent; an entry someone else made is left as it is)."""
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE.setdefault('dtl_mm', CONFIG_MODULE)


def explain_config_error(path, error):
    """A clearer error for a config whose package base config failed to
    load, or ``None`` to keep ``error``: mmengine 0.10.7 imports
    pkg_resources to find ``mmdet::`` / ``mmseg::`` / ``dtl_mm::`` bases, and
    setuptools >= 82 (which current torch pulls in) no longer has it."""
    if isinstance(error, ModuleNotFoundError) and \
            error.name == 'pkg_resources':
        return ModuleNotFoundError(
            f'{path}: its package base configs (mmdet::, mmseg::, '
            f'dtl_mm::) cannot be found: mmengine reads them through '
            f'pkg_resources, which setuptools >= 82 no longer has. Fix: '
            f'pip install "setuptools<82" (or install dtl_mm with its '
            f'[openmmlab] extra, which pins it)')
    return None


def resolve_forked_config_packages():
    """Map each failing ``MODULE2PACKAGE`` entry to the one distribution
    that provides its module.

    Returns:
        dict: ``{module: (old_distribution, new_distribution)}`` of the
        entries changed (empty in an upstream environment).
    """
    from mmengine.config import utils as config_utils

    table = config_utils.MODULE2PACKAGE
    failing = [
        module for module, package in table.items()
        if not _resolves(package) and importlib.util.find_spec(module)
    ]
    if not failing:
        return {}
    providers = md.packages_distributions()
    changed = {}
    for module in failing:
        dists = sorted(set(providers.get(module, [])))
        if len(dists) == 1:  # ambiguous or unknown: leave mmengine's error
            changed[module] = (table[module], dists[0])
            table[module] = dists[0]
    return changed
