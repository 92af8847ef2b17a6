#!/usr/bin/python3
"""Writes tests/fixtures/images/: small natural-looking test images and what PIL and
torchvision make of them, for tests/io/image_test.cpp.

Run with Debian's python3 (Pillow 9.4, torchvision 0.14):  /usr/bin/python3 tools/gen_image_fixtures.py

Files written:
  <image>                 the test images (PNG RGB / RGBA / L; JPEG baseline, progressive,
                          grey, CMYK, 4:4:4; GIF; BMP)
  <image>.rgb, <image>.l  PIL's decode: raw uint8 of Image.open().convert('RGB') / convert('L')
  images.txt              <image> <width> <height>
  <case>.f32              torchvision's output tensor, raw little-endian float32, CHW
  cases.txt               <case> <image> <channels> <resize> <exact> <crop> <interp>
                          <mean x3> <std x3> <C> <H> <W>   (mean/std: the float32 values)
  resize_sweep.txt        <image> <channels> <width> <height> <interp> <crc32 of PIL's resize>
"""
import os
import zlib

import numpy as np
import torch
import torchvision
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from torchvision import transforms as T

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "images")
INTERP = {
    "nearest": T.InterpolationMode.NEAREST,
    "bilinear": T.InterpolationMode.BILINEAR,
    "bicubic": T.InterpolationMode.BICUBIC,
}
PIL_INTERP = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
FASHION = ((0.2860,) * 3, (0.3530,) * 3)


def noise(rng, h, w, scale):
    """Smooth-ish noise: white noise blurred a little, like sensor grain and texture."""
    n = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    return (np.asarray(n, dtype=np.float32) - 128.0) * scale


def street(rng):
    """300x200 RGB: sky gradient, sun, houses with windows, a tree, textured road, text."""
    w, h = 300, 200
    y = np.linspace(0, 1, h)[:, None, None]
    sky = (1 - y) * np.array([90, 150, 230]) + y * np.array([200, 225, 250])
    img = Image.fromarray(np.broadcast_to(sky, (h, w, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((230, 18, 270, 58), fill=(255, 230, 120))
    for i, (x0, top, col) in enumerate([(10, 80, (180, 70, 60)), (85, 60, (220, 200, 160)), (170, 95, (90, 110, 140))]):
        d.rectangle((x0, top, x0 + 70, 160), fill=col, outline=(40, 30, 30))
        d.polygon([(x0 - 5, top), (x0 + 35, top - 30 + 5 * i), (x0 + 75, top)], fill=(110, 40, 35))
        for wx in range(x0 + 8, x0 + 62, 18):
            for wy in range(top + 10, 140, 22):
                d.rectangle((wx, wy, wx + 10, wy + 12), fill=(250, 240, 170) if (wx + wy) % 3 else (40, 50, 70))
    d.ellipse((250, 70, 295, 130), fill=(40, 120, 50))
    d.rectangle((268, 125, 276, 162), fill=(90, 60, 30))
    d.rectangle((0, 160, w, h), fill=(95, 95, 100))
    d.line((0, 182, w, 178), fill=(240, 240, 240), width=3)
    d.text((12, 165), "vitqk 42 - Rue des Images", fill=(255, 255, 255), font=ImageFont.load_default())
    a = np.asarray(img, dtype=np.float32) + noise(rng, h, w, 0.35)[:, :, None]
    return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))


def flower(rng):
    """97x131 RGBA: a flower on leaves, alpha fading out towards the border."""
    w, h = 97, 131
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 40 * np.sin(xx / 9), 130 + 50 * np.cos(yy / 13), 50 + 0 * xx], -1)
    img = Image.fromarray(np.clip(base + noise(rng, h, w, 0.5)[:, :, None], 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    cx, cy = 48, 60
    for k in range(8):
        t = k * np.pi / 4
        px, py = cx + 22 * np.cos(t), cy + 22 * np.sin(t)
        d.ellipse((px - 13, py - 13, px + 13, py + 13), fill=(230, 90 + 10 * k, 160))
    d.ellipse((cx - 11, cy - 11, cx + 11, cy + 11), fill=(250, 200, 40))
    r = np.hypot((xx - cx) / w, (yy - cy) / h)
    alpha = np.clip(255 * (1.2 - 2.2 * r), 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([np.asarray(img), alpha]), "RGBA")


def moon(rng):
    """64x48 grayscale: a cratered disc on a dark, grainy sky."""
    w, h = 64, 48
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - 30, yy - 25)
    g = np.where(r < 18, 200 - 2.5 * r, 15 + 10 * yy / h)
    for cx, cy, cr in [(24, 20, 4), (36, 30, 6), (30, 14, 3)]:
        g = np.where(np.hypot(xx - cx, yy - cy) < cr, g - 60, g)
    return Image.fromarray(np.clip(g + noise(rng, h, w, 0.4), 0, 255).astype(np.uint8), "L")


def field(rng):
    """256x192 photo-like scene for JPEG: hills, sky, fine grass texture (stresses chroma)."""
    w, h = 256, 192
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = 90 + 15 * np.sin(xx / 31) + 8 * np.sin(xx / 7.3)
    sky = np.stack([120 + 60 * yy / h, 170 + 40 * yy / h, 240 + 0 * yy], -1)
    grass = np.stack([70 + 30 * np.sin(xx / 3 + yy / 5), 140 + 40 * np.cos(yy / 4), 40 + 0 * xx], -1)
    a = np.where((yy > horizon)[:, :, None], grass, sky) + noise(rng, h, w, 0.6)[:, :, None]
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse((30, 100, 80, 150), fill=(200, 30, 40))  # a red ball: strong chroma edges
    d.text((150, 170), "JPEG q90", fill=(250, 250, 250), font=ImageFont.load_default())
    return img


def tiny(rng):
    """21x30 palette image (GIF): checker and a diagonal, for upsampling and padding."""
    a = np.zeros((30, 21, 3), np.uint8)
    yy, xx = np.mgrid[0:30, 0:21]
    a[..., 0] = np.where((xx // 3 + yy // 3) % 2, 220, 30)
    a[..., 1] = (255 * yy / 29).astype(np.uint8)
    a[..., 2] = np.where(abs(xx - yy * 0.7) < 2, 255, 60)
    return Image.fromarray(a).quantize(colors=32, dither=Image.Dither.NONE)


def bars(rng):
    """40x25 RGB BMP: colour bars with a noisy band."""
    a = np.zeros((25, 40, 3), np.uint8)
    for i, c in enumerate([(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255)]):
        a[:, i * 8 : i * 8 + 8] = c
    a[15:] = rng.integers(0, 256, (10, 40, 3), dtype=np.uint8)
    return Image.fromarray(a)


def again(name, *modes):
    """An image written earlier in the list, reread and converted to each of modes in turn."""

    def make(rng):
        im = Image.open(os.path.join(OUT, name))
        for mode in modes:
            im = im.convert(mode)
        return im.copy()

    return make


def save_images(rng):
    specs = [
        ("street_300x200.png", street, {}),
        ("flower_97x131_rgba.png", flower, {}),
        ("moon_64x48_gray.png", moon, {}),
        ("field_256x192.jpg", field, {"quality": 90}),
        ("tiny_21x30.gif", tiny, {}),
        ("bars_40x25.bmp", bars, {}),
        # JPEG variants, each re-encoding an image above: progressive, grey, CMYK (PIL writes an
        # Adobe marker and inverted values), and colour without chroma subsampling.
        ("progressive_field.jpg", again("field_256x192.jpg"), {"progressive": True, "quality": 50}),
        ("moon_gray.jpg", again("moon_64x48_gray.png"), {"quality": 80}),
        ("tiny_cmyk.jpg", again("tiny_21x30.gif", "RGB", "CMYK"), {"quality": 85}),
        ("street_444.jpg", again("street_300x200.png"), {"quality": 95, "subsampling": 0}),
    ]
    lines = []
    for name, make, opts in specs:
        make(rng).save(os.path.join(OUT, name), **opts)
        with Image.open(os.path.join(OUT, name)) as im:
            for mode, ext in (("RGB", "rgb"), ("L", "l")):
                with open(os.path.join(OUT, f"{name}.{ext}"), "wb") as f:
                    f.write(im.convert(mode).tobytes())
            lines.append(f"{name} {im.width} {im.height}\n")
    with open(os.path.join(OUT, "images.txt"), "w") as f:
        f.writelines(lines)


# name, image, channels, resize (0: none), exact, crop (0: none), interp, (mean, std)
CASES = [
    ("torchvision_street", "street_300x200.png", 3, 256, False, 224, "bilinear", IMAGENET),
    ("timm_field", "field_256x192.jpg", 3, 248, False, 224, "bicubic", HALF),
    ("hf_flower", "flower_97x131_rgba.png", 3, 224, True, 0, "bilinear", HALF),
    ("fashion_moon", "moon_64x48_gray.png", 1, 28, False, 28, "bilinear", FASHION),
    ("fashion_street", "street_300x200.png", 1, 28, False, 28, "bilinear", FASHION),
    ("fashion_flower", "flower_97x131_rgba.png", 1, 28, False, 28, "bilinear", FASHION),
    ("fashion_field", "field_256x192.jpg", 1, 28, False, 28, "bilinear", FASHION),
    ("down_bicubic_street", "street_300x200.png", 3, 64, False, 56, "bicubic", HALF),
    ("down_bilinear_nocrop_street", "street_300x200.png", 3, 50, False, 0, "bilinear", IMAGENET),
    ("down_nearest_street", "street_300x200.png", 3, 37, False, 33, "nearest", IMAGENET),
    ("down_bicubic_field", "field_256x192.jpg", 3, 60, False, 48, "bicubic", IMAGENET),
    ("down_bilinear_bars", "bars_40x25.bmp", 3, 16, False, 16, "bilinear", HALF),
    ("gray_as_rgb_moon", "moon_64x48_gray.png", 3, 40, False, 32, "bicubic", IMAGENET),
    ("exact_nearest_moon", "moon_64x48_gray.png", 1, 32, True, 0, "nearest", HALF),
    ("up_bicubic_tiny", "tiny_21x30.gif", 3, 100, False, 64, "bicubic", IMAGENET),
    ("up_bilinear_tiny", "tiny_21x30.gif", 3, 70, True, 0, "bilinear", HALF),
    ("up_nearest_tiny", "tiny_21x30.gif", 3, 45, False, 40, "nearest", HALF),
    ("pad_both_tiny", "tiny_21x30.gif", 3, 0, False, 40, "bilinear", HALF),
    ("pad_width_tiny", "tiny_21x30.gif", 3, 0, False, 25, "bilinear", HALF),  # height: round(2.5) = 2
    ("pad_width_odd_tiny", "tiny_21x30.gif", 3, 0, False, 27, "bilinear", HALF),  # height: round(1.5) = 2
    ("pad_after_resize_moon", "moon_64x48_gray.png", 1, 20, False, 30, "bicubic", FASHION),
]


def save_cases():
    lines = []
    for name, image, ch, resize, exact, crop, interp, (mean, std) in CASES:
        im = Image.open(os.path.join(OUT, image)).convert("RGB" if ch == 3 else "L")
        ts = []
        if resize:
            ts.append(T.Resize((resize, resize) if exact else resize, interpolation=INTERP[interp]))
        if crop:
            ts.append(T.CenterCrop(crop))
        ts += [T.ToTensor(), T.Normalize(mean[:ch], std[:ch])]
        x = T.Compose(ts)(im)
        assert x.dtype == torch.float32
        x.numpy().astype("<f4").tofile(os.path.join(OUT, name + ".f32"))
        f32 = lambda v: repr(float(np.float32(v)))  # the float32 value torch normalises with
        stats = " ".join(f32(v) for v in mean + std)
        c, h, w = x.shape
        lines.append(f"{name} {image} {ch} {resize} {int(exact)} {crop} {interp} {stats} {c} {h} {w}\n")
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.writelines(lines)


def save_resize_sweep():
    """PIL's resize over many sizes, both directions and aspect changes, as CRC32s."""
    rng = np.random.default_rng(7)
    lines = []
    for image, ch in [("street_300x200.png", 3), ("tiny_21x30.gif", 3), ("moon_64x48_gray.png", 1)]:
        im = Image.open(os.path.join(OUT, image)).convert("RGB" if ch == 3 else "L")
        sizes = [(1, 1), (im.width, 1), (1, im.height), (im.width * 3, im.height), (im.width, im.height * 2 + 1)]
        sizes += [tuple(int(v) for v in rng.integers(2, 2 * max(im.size), 2)) for _ in range(12)]
        for w, h in sizes:
            for interp in ("nearest", "bilinear", "bicubic"):
                crc = zlib.crc32(im.resize((w, h), PIL_INTERP[interp]).tobytes())
                lines.append(f"{image} {ch} {w} {h} {interp} {crc}\n")
    with open(os.path.join(OUT, "resize_sweep.txt"), "w") as f:
        f.writelines(lines)


def main():
    import PIL

    print(f"Pillow {PIL.__version__}, torchvision {torchvision.__version__}, torch {torch.__version__}")
    os.makedirs(OUT, exist_ok=True)
    save_images(np.random.default_rng(20240611))
    save_cases()
    save_resize_sweep()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
