#!/usr/bin/env python3
"""A phone-style JPEG from an ordinary photo, for the end-to-end app check: 3000×4000 upright
(portrait), stored the way phones store it — the sensor's landscape 4000×3000 pixels plus an EXIF
orientation tag (6: rotate 90° clockwise to view) — at quality 96 with a little sensor grain, so
it weighs several megabytes like the real thing. A viewer or decoder that ignores the tag sees the
subject lying on its side.

    ~/.cache/sprout-venv/bin/python scripts/make_phone_photo.py SOURCE.jpg phone.jpg
"""
import random
import sys

from PIL import Image, ImageOps

source, out = sys.argv[1], sys.argv[2]
upright = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
# Centre 3:4 portrait crop, then up to 3000×4000.
w, h = upright.size
if w * 4 > h * 3:
    cw = h * 3 // 4
    upright = upright.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
else:
    ch = w * 4 // 3
    upright = upright.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))
upright = upright.resize((3000, 4000), Image.BICUBIC)
# Sensor grain: phone JPEGs are several MB because of fine noise.
rng = random.Random(7)
grain = Image.frombytes("L", (1500, 2000), rng.randbytes(1500 * 2000)).resize((3000, 4000), Image.NEAREST)
upright = Image.blend(upright, Image.merge("RGB", (grain, grain, grain)), 0.05)
# Stored as the sensor sees it: rotated 90° counter-clockwise; orientation 6 turns it back.
stored = upright.transpose(Image.Transpose.ROTATE_90)
exif = Image.Exif()
exif[0x0112] = 6            # Orientation
exif[0x010F] = "Sprout"     # Make
exif[0x0110] = "test phone" # Model
stored.save(out, "JPEG", quality=96, exif=exif.tobytes())
check = ImageOps.exif_transpose(Image.open(out))
assert check.size == (3000, 4000), check.size
print("wrote %s: stored %dx%d, EXIF orientation 6, upright %dx%d" % ((out,) + Image.open(out).size + check.size))
