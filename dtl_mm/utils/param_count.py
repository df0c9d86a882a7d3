"""Trainable / frozen parameter counts split by model part."""
from collections import OrderedDict

from torch import nn

PARTS = ('trunk', 'side network', 'neck', 'heads')


def trunk_prefixes() -> tuple:
    """Where a dtl_mm backbone keeps its trunk (``TRUNK`` of every trunk
    family: 'swin', 'vit', 'convnext', ...), in a model and in a backbone."""
    from ..models.trunk_wrapper import PretrainedTrunk
    names, todo = set(), [PretrainedTrunk]
    while todo:
        cls = todo.pop()
        names.add(cls.TRUNK)
        todo.extend(cls.__subclasses__())
    names.discard(PretrainedTrunk.TRUNK)
    return tuple(p for n in sorted(names) for p in (f'backbone.{n}.', f'{n}.'))


def part_of(name: str) -> str:
    if '.petl_' in name:
        return PARTS[1]  # a PETL baseline's modules inside the trunk blocks
    if name.startswith(trunk_prefixes()):
        return PARTS[0]  # the trunk the backbone wraps
    if name.startswith('backbone.'):
        return PARTS[1]  # the CSN
    if name.startswith('neck.'):
        return PARTS[2]
    return PARTS[3]


def count_parameters(model: nn.Module) -> 'OrderedDict[str, dict]':
    """{part: {'trainable': n, 'frozen': n}} in the order of ``PARTS``."""
    counts = OrderedDict((p, dict(trainable=0, frozen=0)) for p in PARTS)
    for name, p in model.named_parameters():
        counts[part_of(
            name)]['trainable' if p.requires_grad else 'frozen'] += p.numel()
    return counts


def format_counts(counts) -> str:
    lines = [f'{"part":<16} {"trainable":>14} {"frozen":>14}']
    total_t = total_f = 0
    for part, c in counts.items():
        lines.append(f'{part:<16} {c["trainable"]:>14,} {c["frozen"]:>14,}')
        total_t += c['trainable']
        total_f += c['frozen']
    lines.append(f'{"total":<16} {total_t:>14,} {total_f:>14,}')
    return '\n'.join(lines)
