"""Write the toy shapes data set in COCO / VOC / ADE20K layout.

    python tools/make_toy_data.py data/toy            # all three
    python tools/make_toy_data.py data/toy --only coco --train 200 --val 50
"""
import argparse
import os.path as osp

from dtl_mm.testing.toy_data import MAKERS


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('root', help='output folder (data/toy in the demo configs)')
    p.add_argument(
        '--only', choices=sorted(MAKERS), nargs='+', default=sorted(MAKERS))
    p.add_argument('--train', type=int, default=64)
    p.add_argument('--val', type=int, default=16)
    p.add_argument(
        '--size', type=int, nargs=2, default=(128, 160), metavar=('H', 'W'))
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    for name in args.only:
        out = MAKERS[name](osp.join(args.root, name), args.train, args.val,
                           tuple(args.size), args.seed)
        print(f'{name}: {out}')


if __name__ == '__main__':
    main()
