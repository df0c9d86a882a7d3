"""The VOC check: mmdet's ``XMLDataset`` reads the image list and each
XML; every parse error is raised again naming the file."""
from xml.etree import ElementTree as ET

from .dataset_access import (check_annotated, config_key, detection_digest,
                             load_data_list, typo_hint)
from .file_facts import DataError, show


# ------------------------------------------------------------------- VOC
def voc_digest(ds, role):
    """Loads an XMLDataset with mmdet's ``load_data_list``; returns (what
    the check reports about it, the files read)."""
    list_file = ds.ann_file
    parsed = []  # (xml path, its objects' names, mmdet's parse)
    parse = ds.parse_data_info

    def parse_named(img_info):
        """mmdet's parse of one XML; its errors name no file."""
        xml = img_info['xml_path']
        try:
            info = parse(img_info)
        except ET.ParseError as e:
            raise DataError(f'{show(xml)}: not valid XML ({e})') from None
        except FileNotFoundError as e:
            if show(e.filename or xml) != show(xml):
                raise DataError(f'{show(xml)} has no <size>, and its image '
                                f'{show(e.filename)} is missing') from None
            raise DataError(f'{show(list_file)}, line {len(parsed) + 1}: '
                            f'{img_info["img_id"]} has no annotation file '
                            f'{show(xml)}') from None
        except Exception as e:
            raise DataError(
                f'{show(xml)}: mmdet cannot read it ({type(e).__name__}: '
                f'{e}); a VOC XML needs <size> with integer <width> and '
                f'<height>, and in each <object> a <name> and a <bndbox> '
                f'with numbers xmin, ymin, xmax, ymax') from e
        # mmdet skips objects of classes not configured without a trace:
        # their names are kept for the counts and the typo hint (read again
        # here, from the file mmdet has just parsed)
        objects = ET.parse(xml).getroot().findall('object')
        parsed.append((xml, [obj.findtext('name') for obj in objects], info))
        return info

    # an instance attribute shadows the public method for this object only:
    # mmdet's load_data_list calls it for each XML
    ds.parse_data_info = parse_named
    data_list = load_data_list(ds, list_file, 'image list',
                               'a VOC image list (one image id a line)')
    classes = tuple(ds.metainfo['classes'])
    min_size = ds.bbox_min_size or 1
    skipped, degenerate = {}, []
    for xml, objects, info in parsed:
        for name in objects:
            if name not in classes:  # a classes subset: legal
                skipped[name] = skipped.get(name, 0) + 1
        for inst in info['instances']:
            x1, y1, x2, y2 = inst['bbox']
            if x2 - x1 < min_size or y2 - y1 < min_size:
                degenerate.append(f'{show(xml)}: '
                                  f'{classes[inst["bbox_label"]]} '
                                  f'{inst["bbox"]}')
    per_class = dict.fromkeys(classes, 0)
    for info in data_list:
        for inst in info['instances']:
            per_class[classes[inst['bbox_label']]] += 1
    typos = [
        f'{c!r}{typo_hint(c, skipped)}' for c, n in per_class.items()
        if n == 0 and typo_hint(c, skipped)
    ]
    if typos and role == 'train':
        raise DataError(f'{show(list_file)}: configured classes without any '
                        f'object, while objects of a similar name are '
                        f'skipped: {", ".join(typos)}')
    warnings = []
    if role == 'train':
        if not any(per_class.values()):
            raise DataError(f'{show(list_file)}: no object of the configured'
                            f' classes {list(classes)}: nothing to train on')
        warnings.append(('configured classes without any object',
                         [c for c, n in per_class.items() if n == 0]))
    # counted in objects; the examples name each class with its count
    warnings.append(('objects of classes not configured, skipped',
                     [f'{n} x {c!r}' for c, n in sorted(skipped.items())],
                     sum(skipped.values())))
    warnings.append(('boxes mmdet ignores (empty, inverted or under the '
                     'minimum size)', degenerate))
    images = [(d['img_path'], [d['width'], d['height']], show(d['xml_path']))
              for d in data_list]
    return detection_digest(
        ds, parsed, images, warnings, per_class,
        classes), [list_file] + [xml for xml, _, _ in parsed]


def check_voc(ds, cfg, role, facts, warnings):
    return check_annotated(
        'voc',
        ds.ann_file,
        'image list',
        lambda p: voc_digest(ds, role),
        config_key(cfg, role),
        facts,
        warnings,
        where='its XML',
        objects='objects')
