#!/usr/bin/env python3
"""Reference data for test/data/*.test.ts: what PIL + torchvision give for the committed images.

Run with a Python that has torch, torchvision and Pillow (on Debian: /usr/bin/python3 with
python3-torch, python3-torchvision, python3-pil):

    /usr/bin/python3 test/data/make_preprocess_fixtures.py [--skimage DIR]

--skimage DIR  first re-create the committed source photos from scikit-image's sample data
               (DIR = .../skimage/data, e.g. from Debian's python3-skimage package):
               rocket.jpg (copied as is: 640x427, 4:4:4), hubble.jpg (hubble_deep_field.jpg
               re-encoded as JPEG q80 4:2:0, 152 KB instead of 516 KB; 1000x872, full of stars, so
               shrinking it without antialiasing aliases badly), chelsea.png (resized to 338x225
               with LANCZOS, to stay small) and truncated.jpg (copied as is). Without it the
               committed copies are used.

Writes into test/fixtures/images/:
  eval224_<name>.npy    float32 NCHW [1, 3, 224, 224]: torchvision Resize(256, BICUBIC),
                        CenterCrop(224), ToTensor(), Normalize(ImageNet mean/std) on
                        Image.open(f).convert('RGB') (timm's eval transform for ConvNeXt 224 models)
                        for rocket.jpg and hubble.jpg (the large, detailed photo).
  crop224_u8_chelsea.npy  uint8 HWC [224, 224, 3]: the same transform before ToTensor, for the
                        PNG (lossless, so the TS side must match exactly).
  squash384_u8_rocket.npy uint8 HWC [384, 384, 3]: Resize((384, 384), BICUBIC) (timm crop_mode
                        'squash', crop_pct 1.0, the 384 models' eval transform) before ToTensor; uint8
                        to keep the file at 442 KB instead of 1.8 MB as float32.
  resize_cases.json     a random 23x17 image and PIL's Image.resize of it (bicubic, bilinear; up, down,
                        a fractional box): the TS resize must match exactly.
  normalize_lut.npy     float32 [1, 3, 1, 256]: ToTensor + Normalize of every 8-bit value.
  variants/*            tiny images (16x12, cut from chelsea.png) in the PNG/JPEG/BMP/GIF/TIFF
                        variants decodeImage must read, with variants/expected.json: PIL's
                        Image.open(f).convert('RGB') pixels (base64, HWC) for each, and whether the
                        TS decoder must match exactly or within a JPEG IDCT tolerance.
  fixtures.json         versions of the tools that produced all this.
"""
import argparse
import base64
import io
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, '..', 'fixtures', 'images'))
VAR = os.path.join(OUT, 'variants')
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def from_skimage(d):
    shutil.copyfile(os.path.join(d, 'rocket.jpg'), os.path.join(OUT, 'rocket.jpg'))
    shutil.copyfile(os.path.join(d, 'truncated.jpg'), os.path.join(OUT, 'truncated.jpg'))
    (Image.open(os.path.join(d, 'hubble_deep_field.jpg')).convert('RGB')
     .save(os.path.join(OUT, 'hubble.jpg'), quality=80, subsampling=2))
    (Image.open(os.path.join(d, 'chelsea.png')).convert('RGB').resize((338, 225), Image.LANCZOS)
     .save(os.path.join(OUT, 'chelsea.png'), optimize=True))


def load(name):
    return Image.open(os.path.join(OUT, name)).convert('RGB')


def references():
    resize_crop = T.Compose([T.Resize(int(224 / 0.875), interpolation=InterpolationMode.BICUBIC), T.CenterCrop(224)])
    to_tensor = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    for name in ['rocket', 'hubble']:
        x = to_tensor(resize_crop(load(f'{name}.jpg'))).unsqueeze(0).numpy().astype(np.float32)
        assert x.shape == (1, 3, 224, 224)
        np.save(os.path.join(OUT, f'eval224_{name}.npy'), x)
    np.save(os.path.join(OUT, 'crop224_u8_chelsea.npy'), np.asarray(resize_crop(load('chelsea.png')), dtype=np.uint8))
    squash = T.Resize((384, 384), interpolation=InterpolationMode.BICUBIC)
    np.save(os.path.join(OUT, 'squash384_u8_rocket.npy'), np.asarray(squash(load('rocket.jpg')), dtype=np.uint8))


def resize_cases():
    """PIL Image.resize on a random image: up, down, mixed, 1x1 and a fractional box."""
    src = np.random.default_rng(1).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    cases = []
    for interp, filt in [('bicubic', Image.BICUBIC), ('bilinear', Image.BILINEAR)]:
        for size, box in [((7, 5), None), ((50, 40), None), ((23, 8), None), ((5, 17), None), ((1, 1), None),
                          ((31, 29), (2.5, 1.25, 20, 16))]:
            out = np.asarray(Image.fromarray(src).resize(size, filt, box=box), dtype=np.uint8)
            cases.append({'interpolation': interp, 'width': size[0], 'height': size[1], 'box': box,
                          'rgb': base64.b64encode(out.tobytes()).decode()})
    with open(os.path.join(OUT, 'resize_cases.json'), 'w') as f:
        json.dump({'width': 23, 'height': 17, 'rgb': base64.b64encode(src.tobytes()).decode(), 'cases': cases}, f, indent=1)
        f.write('\n')
    # ToTensor + Normalize of every 8-bit value, float32 [1, 3, 1, 256]: the TS side must be bit-exact.
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, 2)
    lut = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])(Image.fromarray(ramp)).unsqueeze(0).numpy()
    np.save(os.path.join(OUT, 'normalize_lut.npy'), lut.astype(np.float32))


def png16(path, arr, color_type):
    """A 16-bit PNG written by hand (PIL cannot write 16-bit RGB)."""
    h, w = arr.shape[:2]
    raw = b''.join(b'\x00' + arr[y].astype('>u2').tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, color_type, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def variants():
    os.makedirs(VAR, exist_ok=True)
    for f in os.listdir(VAR):
        os.remove(os.path.join(VAR, f))
    rng = np.random.default_rng(0)
    base = np.asarray(load('chelsea.png'))[100:112, 150:166].copy()  # 16x12 of fur and eye
    rgb = Image.fromarray(base)
    expected = {}

    def record(name, exact=True, tolerance=0, expect=None, note=None, transpose=False):
        im = Image.open(os.path.join(VAR, name))
        if transpose:
            im = ImageOps.exif_transpose(im)
        pil = np.asarray(im.convert('RGB'), dtype=np.uint8)
        want = pil if expect is None else expect
        entry = {'width': int(want.shape[1]), 'height': int(want.shape[0]), 'mode': Image.open(os.path.join(VAR, name)).mode,
                 'exact': exact, 'tolerance': tolerance, 'rgb': base64.b64encode(want.tobytes()).decode()}
        if note:
            entry['note'] = note
        if expect is not None:
            entry['pil_rgb'] = base64.b64encode(pil.tobytes()).decode()
        expected[name + (' exif_transpose' if transpose else '')] = entry

    def save(im, name, **kw):
        im.save(os.path.join(VAR, name), **kw)
        return name

    record(save(rgb, 'rgb8.png'))
    record(save(rgb.convert('L'), 'gray8.png'))
    record(save(rgb.convert('LA'), 'graya8.png'))
    rgba = np.asarray(rgb.convert('RGBA')).copy()
    rgba[..., 3] = rng.integers(0, 256, rgba.shape[:2])
    rgba[:4, :4, 3] = 0  # fully transparent corner: its colour must survive (no compositing)
    record(save(Image.fromarray(rgba), 'rgba8.png'), note='alpha dropped, colour under alpha 0 kept')
    record(save(rgb.convert('P', palette=Image.ADAPTIVE, colors=20), 'palette.png'))
    record(save(rgb.convert('P', palette=Image.ADAPTIVE, colors=8), 'palette_trns.png', transparency=3))
    record(save(rgb.convert('1'), 'bilevel.png'))
    record(save(rgb, 'rgb_trns.png', transparency=tuple(int(v) for v in base[0, 0])), note='tRNS colour key keeps its colour')
    record(save(rgb.convert('L'), 'gray_trns.png', transparency=int(np.asarray(rgb.convert('L'))[0, 0])))
    b16 = (base.astype(np.uint16) * 257 + rng.integers(0, 257, base.shape)).astype(np.uint16)
    a16 = rng.integers(0, 65536, base.shape[:2] + (1,)).astype(np.uint16)
    png16(os.path.join(VAR, 'rgb16.png'), b16, 2)
    record('rgb16.png', note='high byte of each sample')
    png16(os.path.join(VAR, 'rgba16.png'), np.concatenate([b16, a16], 2), 6)
    record('rgba16.png')
    png16(os.path.join(VAR, 'graya16.png'), np.stack([b16[..., 1], a16[..., 0]], 2), 4)
    record('graya16.png')
    png16(os.path.join(VAR, 'gray16.png'), b16[..., 1], 0)
    high = np.repeat((b16[..., 1] >> 8).astype(np.uint8)[..., None], 3, 2)
    record('gray16.png', expect=high, note='PIL opens 16-bit gray as mode I and clips it to 255 on convert("RGB"); we keep the high byte')
    record(save(rgb, 'rgb.bmp'))
    record(save(rgb.convert('P', palette=Image.ADAPTIVE, colors=20), 'palette.bmp'))
    record(save(rgb.convert('L'), 'gray.bmp'))
    record(save(rgb.convert('P', palette=Image.ADAPTIVE, colors=32), 'palette.gif'))
    record(save(rgb.convert('P', palette=Image.ADAPTIVE, colors=32), 'trns.gif', transparency=5),
           note='transparent pixels take their palette colour, as in PIL')
    record(save(rgb, 'rgb.tif'))
    record(save(rgb, 'rgb_lzw.tif', compression='tiff_lzw'))
    record(save(rgb.convert('L'), 'gray.tif'))
    # JPEG: libjpeg-turbo (PIL) and jpeg-js differ in IDCT rounding; upsampling and colour match.
    record(save(rgb, 'q90_420.jpg', quality=90, subsampling=2), exact=False, tolerance=4)
    record(save(rgb, 'q90_422.jpg', quality=90, subsampling=1), exact=False, tolerance=4)
    record(save(rgb, 'q90_444.jpg', quality=90, subsampling=0), exact=False, tolerance=4)
    record(save(rgb, 'progressive.jpg', quality=90, progressive=True), exact=False, tolerance=4)
    record(save(rgb.convert('L'), 'gray.jpg', quality=90), exact=False, tolerance=4)
    # An Adobe APP14 marker saying YCbCr (as Photoshop writes): jpeg-js would apply its own colour
    # conversion for it, so the decoder must cut the marker out first.
    with open(os.path.join(VAR, 'q90_444.jpg'), 'rb') as f:
        data = f.read()
    with open(os.path.join(VAR, 'adobe_ycc.jpg'), 'wb') as f:
        f.write(data[:2] + b'\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x01' + data[2:])
    assert Image.open(os.path.join(VAR, 'adobe_ycc.jpg')).info.get('adobe_transform') == 1
    record('adobe_ycc.jpg', exact=False, tolerance=4)
    # Odd sizes exercise the edge columns/rows of the chroma upsampling.
    record(save(rgb.crop((0, 0, 15, 11)), 'odd_420.jpg', quality=90, subsampling=2), exact=False, tolerance=4)
    # EXIF orientation: ignored by convert('RGB'), applied by exif_transpose.
    asym = Image.fromarray(base[:5, :3])  # 3 wide, 5 high
    for k in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = k
        name = save(asym, f'orient{k}.png', exif=exif.tobytes())
        record(name)
        record(name, transpose=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    name = save(rgb, 'orient6.jpg', quality=95, exif=exif.tobytes())
    record(name, exact=False, tolerance=4)
    record(name, exact=False, tolerance=4, transpose=True)
    with open(os.path.join(VAR, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write('\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--skimage', help="scikit-image's data directory, to re-create the source photos")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if args.skimage:
        from_skimage(args.skimage)
    references()
    resize_cases()
    variants()
    meta = {'python': sys.version.split()[0], 'torch': torch.__version__, 'torchvision': torchvision.__version__,
            'pillow': PIL.__version__, 'numpy': np.__version__}
    with open(os.path.join(OUT, 'fixtures.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')
    for name in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, name)
        if os.path.isfile(p):
            print(f'{name:28s} {os.path.getsize(p):8d} bytes')


if __name__ == '__main__':
    main()
