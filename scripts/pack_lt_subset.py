#!/usr/bin/env python
"""Pack the long-tailed subset of cifar10-jpeg that one recipe reads into a small zip of the same layout and file name
(cifar10-jpeg.zip), for a machine that has no data: the LT training images, the held-out validation images and the
whole test set, byte for byte. A smaller pool changes the *default* n_max (the smallest class after the validation
split), so the recipe that reads the subset must pin n_max; the script prints it.

    python scripts/pack_lt_subset.py --out /tmp/gpu-data             # IF 100, n_max 4980, 20 val per class: about 23 MB
    LTR_NB_DATA=/tmp/gpu-data ltr_nb ... --dataset cifar10-jpeg --imb_factor 100 --n_max 4980
"""
import argparse, sys, zipfile
from pathlib import Path
import numpy as np
import ltr_nb  # noqa: F401  (torchvision guard)
from ltr_nb.core import data_root
from ltr_nb.data import image_folder_sources, split_val, img_num_per_cls, lt_indices

NAME = 'cifar10-jpeg.zip'


def subset_members(src:Path, imb_factor:float, n_max:int|None, val_per_class:int, profile:str='exp') -> tuple[list, int]:
    "The member names a recipe reads (LT train, validation, test) from zip `src`, and the n_max it uses (the full pool's default if None)."
    tr, te = image_folder_sources(src)
    pool, val = split_val(tr.labels, len(tr.classes), val_per_class)
    avail = np.bincount(tr.labels.numpy()[pool], minlength=len(tr.classes))
    n_max = int(avail.min()) if n_max is None else n_max
    keep = lt_indices(tr.labels, img_num_per_cls(n_max, len(tr.classes), imb_factor, profile), 'first', 0, avail=pool)
    return [tr.files[i] for i in sorted(set(keep.tolist()) | set(val.tolist()))] + list(te.files), n_max


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data_root', default=None, help='where cifar10-jpeg.zip is (default: $LTR_NB_DATA)')
    p.add_argument('--imb_factor', type=float, default=100)
    p.add_argument('--n_max', type=int, default=None, help='largest class (default: what the full pool gives, 4980)')
    p.add_argument('--val_per_class', type=int, default=20)
    p.add_argument('--out', required=True, help='folder to write cifar10-jpeg.zip into (a data root for the subset)')
    p.add_argument('--max_mb', type=float, default=24, help='refuse to write a zip larger than this')
    a = p.parse_args(argv)
    src = data_root(a.data_root)/NAME
    if not src.is_file(): p.error(f"data_root={str(src.parent)!r} has no {NAME}; set $LTR_NB_DATA or --data_root")
    names, n_max = subset_members(src, a.imb_factor, a.n_max, a.val_per_class)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True); dst = out/NAME
    if dst.resolve() == src.resolve(): p.error(f"out={a.out!r} is the source's folder; choose another")
    with zipfile.ZipFile(src) as zi:
        size = sum(zi.getinfo(n).file_size for n in names)
        if size > a.max_mb * 2**20: p.error(f"the subset is {size / 2**20:.1f} MB, over --max_mb {a.max_mb:g}")
        with zipfile.ZipFile(dst.with_suffix('.tmp'), 'w', zipfile.ZIP_STORED) as zo:
            for n in names: zo.writestr(zi.getinfo(n), zi.read(n))
    dst.with_suffix('.tmp').replace(dst)
    print(f"wrote {dst}: {len(names)} images, {dst.stat().st_size / 2**20:.1f} MB; read it with "
          f"imb_factor={a.imb_factor:g}, n_max={n_max}, val_per_class={a.val_per_class} (pin n_max: the subset's own default differs)")
    return 0


if __name__ == '__main__': sys.exit(main())
