#!/usr/bin/python3
"""Builds a small image-classification dataset from real photographs and textures.

Sources: the sample images that scikit-image ships (Debian package python3-skimage, extracted
without installing it; see run.sh). Each class is one source image; every sample is a random
crop of it. Train crops come only from the LEFT 2/3 of the source image and val crops only from
the RIGHT 1/3, so no train and val pixels overlap: the validation accuracy measures
generalisation to an unseen part of each scene/texture, not memorisation.

Crops are rectangles of random size (side 64..160 px, aspect 3:4..4:3, clipped to the region),
saved at their native resolution as JPEG (quality 90), so the loader sees varied sizes.
Deterministic: a fixed numpy seed per (class, split).

Usage: /usr/bin/python3 make_dataset.py <skimage data dir> <out dir> [--train N] [--val N]
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

# class name -> source file. Four grayscale (texture/surface) and four colour sources, so the
# classes cannot all be told apart by colour alone.
CLASSES = {
    'brick': 'brick.png',          # 512x512 gray, brick wall texture
    'grass': 'grass.png',          # 512x512 gray, grass texture
    'gravel': 'gravel.png',        # 512x512 gray, gravel texture
    'moon': 'moon.png',            # 512x512 gray, lunar surface
    'coffee': 'coffee.png',        # 600x400 RGB, cup of coffee on a table
    'hubble': 'hubble_deep_field.jpg',  # 1000x872 RGB, Hubble deep field
    'ihc': 'ihc.png',              # 512x512 RGB, immunohistochemistry stain
    'motorcycle': 'motorcycle_left.png',  # 741x500 RGB, motorcycle photo
}

MIN_SIDE, MAX_SIDE = 64, 160


def crops(img: Image.Image, x0: int, x1: int, n: int, rng: np.random.Generator):
    """n random crops whose pixels lie in columns [x0, x1) of img."""
    w_reg, h = x1 - x0, img.height
    out = []
    for _ in range(n):
        side = rng.uniform(MIN_SIDE, MAX_SIDE)
        ar = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw = int(min(w_reg, round(side * np.sqrt(ar))))
        ch = int(min(h, round(side / np.sqrt(ar))))
        left = x0 + int(rng.integers(0, w_reg - cw + 1))
        top = int(rng.integers(0, h - ch + 1))
        assert x0 <= left and left + cw <= x1
        out.append(img.crop((left, top, left + cw, top + ch)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('src', help='skimage data dir (…/skimage/data)')
    ap.add_argument('out', help='output dir: <out>/train/<class>/, <out>/val/<class>/')
    ap.add_argument('--train', type=int, default=60, help='train crops per class (default 60)')
    ap.add_argument('--val', type=int, default=20, help='val crops per class (default 20)')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()

    for split in ('train', 'val'):
        shutil.rmtree(os.path.join(a.out, split), ignore_errors=True)
    manifest = {'source': 'scikit-image 0.19.3 sample images (Debian python3-skimage)', 'split': 'train: left 2/3 of each image, val: right 1/3 (disjoint pixels)',
                'crop_side': [MIN_SIDE, MAX_SIDE], 'format': 'JPEG q90, native crop size', 'seed': a.seed, 'classes': {}}
    for ci, (name, file) in enumerate(sorted(CLASSES.items())):
        img = Image.open(os.path.join(a.src, file))
        img = img.convert('L' if img.mode in ('L', 'I', 'I;16') else 'RGB')
        w = img.width
        cut = (2 * w) // 3
        info = {'file': file, 'size': [img.width, img.height], 'mode': img.mode, 'train_cols': [0, cut], 'val_cols': [cut, w]}
        for split, (x0, x1, n) in {'train': (0, cut, a.train), 'val': (cut, w, a.val)}.items():
            rng = np.random.default_rng([a.seed, ci, 0 if split == 'train' else 1])
            d = os.path.join(a.out, split, name)
            os.makedirs(d, exist_ok=True)
            for i, c in enumerate(crops(img, x0, x1, n, rng)):
                c.save(os.path.join(d, f'{name}_{split}_{i:03d}.jpg'), quality=90)
            info[split] = n
        manifest['classes'][name] = info
        print(f"{name:11s} {file:22s} {img.width}x{img.height} {img.mode:3s} train {a.train} from cols [0,{cut}) val {a.val} from cols [{cut},{w})")
    with open(os.path.join(a.out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
