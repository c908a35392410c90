#!/usr/bin/python3
"""Pillow reference outputs for the augmentation pixel ops (src/train/image_ops.ts).

timm's RandAugment and torchvision's TrivialAugmentWide call these Pillow functions on PIL images;
this script applies them, with the arguments timm passes (fill = ImageNet mean bytes), to two small
seeded images and writes test/fixtures/augment/pillow_ops.json (images and outputs as base64 RGB
bytes), which test/train/augment.test.ts compares against bit for bit without Python.

Usage (the Debian interpreter, which has Pillow):  /usr/bin/python3 test/train/make_augment_fixtures.py
"""

import base64
import json
import os

import numpy as np
import PIL
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

FILL = (124, 116, 104)  # timm: round(255 * IMAGENET_DEFAULT_MEAN)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'augment', 'pillow_ops.json')


def b64(img):
    return base64.b64encode(np.asarray(img, dtype=np.uint8).tobytes()).decode()


def images():
    rng = np.random.default_rng(11)
    # 'noise': the full byte range; 'soft': a low-contrast gradient with noise (autocontrast and
    # equalize have work to do, interpolation sees smooth and sharp edges).
    noise = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:9, 0:11]
    soft = np.stack([60 + 9 * xx, 70 + 11 * yy, 90 + 4 * (xx + yy)], axis=-1) + rng.integers(0, 12, size=(9, 11, 3))
    return {'noise': Image.fromarray(noise.astype(np.uint8)), 'soft': Image.fromarray(soft.astype(np.uint8))}


def solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    return img.point(lut * 3)


def cases(img):
    w, h = img.size
    out = []

    def add(op, arg, result, resample=None):
        out.append({'op': op, 'arg': arg, 'resample': resample, 'out': b64(result)})

    add('luma', 0, img.convert('L').convert('RGB'))
    add('smooth', 0, img.filter(ImageFilter.SMOOTH))
    add('autocontrast', 0, ImageOps.autocontrast(img))
    add('equalize', 0, ImageOps.equalize(img))
    add('invert', 0, ImageOps.invert(img))
    for bits in (0, 1, 3, 4, 7):
        add('posterize', bits, ImageOps.posterize(img, bits))
    for t in (0, 1, 100, 128, 230, 256):
        add('solarize', t, ImageOps.solarize(img, t))
    for a in (0, 33, 110):
        add('solarizeAdd', a, solarize_add(img, a))
    for f in (0.0, 0.1, 0.37, 0.55, 1.0, 1.3, 1.45, 1.9):
        add('brightness', f, ImageEnhance.Brightness(img).enhance(f))
        add('color', f, ImageEnhance.Color(img).enhance(f))
        add('contrast', f, ImageEnhance.Contrast(img).enhance(f))
        add('sharpness', f, ImageEnhance.Sharpness(img).enhance(f))
    for name, resample in (('bilinear', Image.BILINEAR), ('bicubic', Image.BICUBIC)):
        for f in (-0.3, -0.17, 0.12, 0.3):
            add('shearX', f, img.transform(img.size, Image.AFFINE, (1, f, 0, 0, 1, 0), resample=resample, fillcolor=FILL), name)
            add('shearY', f, img.transform(img.size, Image.AFFINE, (1, 0, 0, f, 1, 0), resample=resample, fillcolor=FILL), name)
        for pct in (-0.45, -0.2, 0.13, 0.45):
            add('translateX', pct, img.transform(img.size, Image.AFFINE, (1, 0, pct * w, 0, 1, 0), resample=resample, fillcolor=FILL), name)
            add('translateY', pct, img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, pct * h), resample=resample, fillcolor=FILL), name)
        for deg in (-30, -12.5, 9, 17.3, 30, 90):
            add('rotate', deg, img.rotate(deg, resample=resample, fillcolor=FILL), name)
    return out


def main():
    imgs = images()
    doc = {
        'pillow': PIL.__version__,
        'fill': FILL,
        'images': {k: {'width': v.size[0], 'height': v.size[1], 'data': b64(v), 'cases': cases(v)} for k, v in imgs.items()},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    print(f'wrote {OUT}: {sum(len(v["cases"]) for v in doc["images"].values())} cases')


if __name__ == '__main__':
    main()
