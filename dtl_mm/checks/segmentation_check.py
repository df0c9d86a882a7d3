"""The segmentation check (mmseg's ``BaseSegDataset``: label maps against
the classes) and the check of any other dataset type."""
import os.path as osp

from .dataset_access import Report, check_images, load_data_list
from .file_facts import DataError, image_header, label_facts, show, some_of


# ---------------------------------------------------------- segmentation
def label_backend(cfg):
    for step in cfg.get('pipeline') or []:
        if isinstance(step, dict) and step.get('type') == 'LoadAnnotations':
            return step.get('imdecode_backend', 'pillow')
    return 'pillow'


def check_segmentation(ds, cfg, role, facts, warnings):
    img_dir = ds.data_prefix.get('img_path') or ''
    seg_dir = ds.data_prefix.get('seg_map_path') or ''
    reduce_zero = ds.reduce_zero_label
    for step in cfg.get('pipeline') or []:
        if isinstance(step, dict) and step.get('type') == 'LoadAnnotations' \
                and step.get('reduce_zero_label') not in (None, reduce_zero):
            # mmseg asserts on it only when it loads the first label map
            raise DataError(
                f'{show(seg_dir)}: {cfg["type"]} has reduce_zero_label='
                f'{reduce_zero}, its pipeline\'s LoadAnnotations has '
                f'reduce_zero_label={step["reduce_zero_label"]}: set it in '
                f'one place (without the argument LoadAnnotations follows '
                f'the dataset)')
    if not osp.isdir(img_dir):
        raise DataError(f'image folder not found: {show(img_dir)}')
    data_list = load_data_list(
        ds, ds.ann_file or img_dir, 'image list', 'a list of image names '
        'without suffix, one a line')
    if not data_list:
        raise DataError(f'no *{ds.img_suffix} images in {show(img_dir)}')
    num_classes = len(ds.metainfo['classes'])
    # stored values: 0..C-1 (or 1..C with 0 = unlabelled when labels are
    # reduced by one), plus the ignore value 255
    valid = set(range(1, num_classes + 1)) | {0} if reduce_zero else \
        set(range(num_classes))
    valid.add(255)
    imgs = [d['img_path'] for d in data_list]
    segs = [d.get('seg_map_path') for d in data_list]
    if None in segs:  # no seg_map_path configured: images only
        check_images([(i, None, '') for i in imgs], img_dir, facts,
                     Report(show(img_dir)), 'its label map')
        return f'{show(img_dir)}: {len(imgs)} images without label maps'
    missing = [
        f'{show(s)} (for {show(i)})' for i, s in zip(imgs, segs)
        if not osp.isfile(s)
    ]
    if missing:
        raise DataError(f'{len(missing)} label maps missing: '
                        f'{some_of(missing)}')
    backend = label_backend(cfg)
    labels = facts.many(
        'label', segs, lambda p: label_facts(p, backend), extra=backend)
    headers = facts.many('image', imgs, image_header)
    problems = []
    for img, seg, label, head in zip(imgs, segs, labels, headers):
        if isinstance(label, Exception):
            problems.append(f'{show(seg)}: unreadable label map ({label})')
        elif isinstance(head, Exception):
            problems.append(f'{show(img)}: unreadable image ({head})')
        elif label[2] != 1:
            problems.append(f'{show(seg)}: {label[2]} channels; a label map '
                            f'has one (class indices, e.g. an 8-bit '
                            f'grayscale or palette PNG), not colours')
        elif tuple(label[:2]) != tuple(head[0]):
            problems.append(f'{show(seg)}: {label[0]}x{label[1]} (width x '
                            f'height), its image {show(img)} is '
                            f'{head[0][0]}x{head[0][1]}')
        elif set(label[3]) - valid:
            expected = (f'0 (unlabelled), 1..{num_classes}'
                        if reduce_zero else f'0..{num_classes - 1}')
            problems.append(f'{show(seg)}: label values '
                            f'{sorted(set(label[3]) - valid)[:8]} outside '
                            f'the {num_classes} classes (expected '
                            f'{expected}, or 255 = ignore)')
    if problems:
        raise DataError(f'{len(problems)} of {len(segs)} label maps in '
                        f'{show(seg_dir)} cannot be used: {some_of(problems)}')
    return (f'{show(img_dir)}: {len(imgs)} images with label maps of '
            f'{num_classes} classes')


# ------------------------------------------------------- other datasets
def check_other(ds, cfg, role, facts, warnings):
    """A dataset class without a check of its own: the images its data
    list names (and their sizes, where it gives them)."""
    source = ds.ann_file or ds.data_root or ''
    data_list = load_data_list(ds, source, 'annotation file',
                               f'what {type(ds).__name__} reads')
    images = [
        (d['img_path'],
         [d['width'], d['height']] if 'width' in d and 'height' in d else None,
         f'entry {i}') for i, d in enumerate(data_list) if d.get('img_path')
    ]
    if not images:
        return 'not checked (its data list names no image files)'
    report = Report(show(source))
    check_images(images, source, facts, report, 'its data list')
    report.log(warnings)
    return f'{show(source)}: {len(images)} images'
