# Copyright (c) mmpvg contributors. All rights reserved.
"""Write the embedded demo datasets under data/ (no download).

Usage: python tools/dataset_converters/make_demo_data.py [--root data]
           [--only digits shapes_coco shapes_ade]

Writes data/demo_digits (classification), data/demo_shapes_coco (COCO
instance segmentation) and data/demo_shapes_ade (ADE20K-style semantic
segmentation); each is skipped if already there with the same settings.
"""
import argparse
import os.path as osp
import sys
import time
if __name__ == '__main__':  # this checkout's mmpvg, not an installed one
    sys.path.insert(0, osp.abspath(osp.join(__file__, '../../..')))

from mmpvg.demo import (make_digits_classification, make_shapes_ade,
                        make_shapes_coco)

DEMOS = {
    'digits': ('demo_digits', make_digits_classification),
    'shapes_coco': ('demo_shapes_coco', make_shapes_coco),
    'shapes_ade': ('demo_shapes_ade', make_shapes_ade),
}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root',
                        default='data',
                        help='parent directory of the demo datasets')
    parser.add_argument('--only',
                        nargs='+',
                        choices=list(DEMOS),
                        default=list(DEMOS),
                        metavar='NAME',
                        help='demos to write, any of: ' + ', '.join(DEMOS) +
                        ' (default: all)')
    args = parser.parse_args()
    for name in dict.fromkeys(args.only):  # in order, without repeats
        folder, make = DEMOS[name]
        path = osp.join(args.root, folder)
        start = time.time()
        counts = make(path)
        print(f'{folder}: {counts} in {path} '
              f'({time.time() - start:.1f} s)')


if __name__ == '__main__':
    main()
