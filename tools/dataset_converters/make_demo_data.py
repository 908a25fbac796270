# Copyright (c) mmpvg contributors. All rights reserved.
"""Write the embedded demo datasets under data/ (no download).

Usage: python tools/dataset_converters/make_demo_data.py [--root data]
"""
import argparse
import os.path as osp

from mmpvg.datasets import make_digits_classification


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--root', default='data',
                        help='parent directory of the demo datasets')
    args = parser.parse_args()
    counts = make_digits_classification(osp.join(args.root, 'demo_digits'))
    print(f'demo_digits: {counts} images in {osp.join(args.root, "demo_digits")}')


if __name__ == '__main__':
    main()
