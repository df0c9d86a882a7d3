"""Predict on images with one or several (config, checkpoint) pairs.

    python tools/infer.py CONFIG CKPT INPUTS --out-dir DIR
    python tools/infer.py INPUTS --task CONFIG CKPT --task CONFIG CKPT \
        --out-dir DIR

INPUTS: an image, a folder or a glob pattern (quoted). For each image it
draws the predictions (boxes / masks with class names, or the label map in
the dataset's palette) into DIR and writes them as JSON beside the drawing;
with several tasks, one sub-folder per task. Output names mirror each
image's path relative to the deepest folder holding all inputs. Each task
reads its images through its own test pipeline and data preprocessor; tasks
fine-tuned from the same frozen Swin share its trunk, computed once per
batch, wherever their inputs are identical.

An input that cannot be read as an image is skipped with a warning; the
exit status is then 1 (the other images' results are written). An --out-dir
where an output would replace an input image (DIR is the input folder, or
an ancestor whose mirrored names land on the inputs) is refused before any
work, with exit status 2.
"""
import argparse
import os.path as osp
import sys

from dtl_mm.apis.inference_outputs import (outputs_on_inputs,
                                           overwrite_message, unique_inputs)
from dtl_mm.apis.inferencer import MultiTaskInferencer, list_images, task_names
from dtl_mm.utils.tool_errors import run_tool


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    p.add_argument(
        'args',
        nargs='+',
        metavar='[CONFIG CKPT] INPUTS',
        help='a config and its checkpoint, then the inputs; '
        'only the inputs when --task is given')
    p.add_argument(
        '--task',
        nargs=2,
        action='append',
        default=[],
        metavar=('CONFIG', 'CKPT'),
        help='a task; repeat for several tasks on one trunk')
    p.add_argument(
        '--out-dir',
        required=True,
        help='folder for the drawings and JSON predictions')
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='smallest score of a drawn box / mask (default: %(default)s)')
    p.add_argument(
        '--backbone-from-pretrained',
        metavar='SWIN_CKPT',
        help='the frozen Swin file for lean checkpoints whose recorded '
        'pretrained file is not there (replaces '
        'model.backbone.init_cfg.checkpoint; its sha256 is checked)')
    args = p.parse_args()
    if osp.exists(args.out_dir) and not osp.isdir(args.out_dir):
        p.error(f'--out-dir {args.out_dir} is a file; give a folder (it is '
                f'created if missing)')
    if args.task:
        args.tasks, args.inputs = args.task, args.args
    elif len(args.args) >= 3:
        args.tasks, args.inputs = [args.args[:2]], args.args[2:]
    else:
        p.error('give CONFIG CKPT INPUTS, or INPUTS with --task CONFIG CKPT')
    check_out_dir(p, args)
    return args


def check_out_dir(p, args):
    """Refuses, before any model is built or anything written, an
    --out-dir where a drawing or JSON would replace an input image."""
    try:
        images = unique_inputs(
            [img for spec in args.inputs for img in list_images(spec)])
    except FileNotFoundError:
        return  # the inferencer names the missing input
    hits = outputs_on_inputs(images, args.out_dir,
                             task_names([c for c, _ in args.tasks]))
    if hits:
        # one line and argparse's exit status for a bad argument
        p.exit(
            2, f'{p.prog}: error: '
            f'{overwrite_message(hits, args.out_dir)}\n')


def main():
    args = parse_args()
    inferencer = MultiTaskInferencer(
        [tuple(t) for t in args.tasks],
        device=args.device,
        backbone_from_pretrained=args.backbone_from_pretrained)
    print(inferencer.describe(), flush=True)
    inferencer(
        args.inputs,
        batch_size=args.batch_size,
        out_dir=args.out_dir,
        pred_score_thr=args.score_thr,
        return_predictions=False)  # written as they come: memory stays flat
    if inferencer.skipped:
        sys.exit(f'{len(inferencer.skipped)} input(s) skipped (not readable '
                 f'as images): {", ".join(inferencer.skipped)}')


if __name__ == '__main__':
    run_tool(main)
