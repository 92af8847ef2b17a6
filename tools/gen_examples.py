#!/usr/bin/python3
"""Writes examples/*.png: Fashion-MNIST test images for the CLI demo and the README.

Run with Debian's python3:  /usr/bin/python3 tools/gen_examples.py [fashion-mnist dir]
Each example is the first test image of its class, saved as a 28x28 grayscale PNG.
"""
import gzip
import os
import struct
import sys

from PIL import Image

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
EXAMPLES = {"ankle_boot.png": 9, "trouser.png": 1, "bag.png": 8}


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    got, count = struct.unpack(">II", data[:8])
    assert got == magic, f"{path}: bad magic {got:#x}"
    return count, data


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
    n, labels = read_idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"), 0x801)
    m, images = read_idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"), 0x803)
    rows, cols = struct.unpack(">II", images[8:16])
    assert n == m and (rows, cols) == (28, 28)
    os.makedirs(out, exist_ok=True)
    for name, cls in EXAMPLES.items():
        i = next(i for i in range(n) if labels[8 + i] == cls)
        pixels = images[16 + i * 784 : 16 + (i + 1) * 784]
        Image.frombytes("L", (28, 28), pixels).save(os.path.join(out, name), optimize=True)
        print(f"examples/{name}: test image {i}, class {cls} ({CLASSES[cls]})")


if __name__ == "__main__":
    main()
