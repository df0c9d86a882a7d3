"""Let ``mmseg::`` base configs resolve when a fork provides ``mmseg``.

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
