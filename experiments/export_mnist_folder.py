"""Writes MNIST as a `folder:` dataset of PNGs, to train through the folder path on real data.

    python experiments/export_mnist_folder.py OUT [--mnist-dir DIR]
    ram train mnist28 dataset=folder:OUT ...

OUT/{train,validation,test}/{0..9}/NNNNN.png: the 50,000 / 10,000 / 10,000 images of `ram`'s MNIST
split, lossless (`ram.datasets.write_folder`), so the folder path reads back the same pixels as the
MNIST path (tests/test_datasets.py checks it on a subset). The images are not committed: about 280 MB
on disk in 70,000 files, written in a minute or two.
"""

from __future__ import annotations

import argparse
import time

from ram import datasets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write (created)")
    parser.add_argument("--mnist-dir", help="the four original MNIST files (default $RAM_MNIST_DIR)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    mnist = datasets.load_dataset("mnist", mnist_dir=args.mnist_dir)
    datasets.write_folder(mnist, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
