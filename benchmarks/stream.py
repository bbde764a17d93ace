#!/usr/bin/env python3
"""Streaming throughput: ltr_nb's list-file loader (class-aware sampler) vs fastai's ImageDataLoaders (plain shuffle).

Both read the same image files from disk through fastai's vision pipeline with the same transforms
(RandomResizedCrop(size, scale 0.08-1), horizontal flip, ImageNet normalisation), batch size and worker processes;
only the order of the training indices differs: (a) `ltr_nb.listfile.list_file_dls` draws them with a `ClassSampler`
(class-balanced by default), (b) `ImageDataLoaders.from_df` shuffles. Each timing is a full pass over `--batches`
training batches from a fresh iterator (worker start-up included), runs interleaved (a, b, a, b, ...), medians and the
median of the per-repeat ratio a/b reported (target >= 0.95). The images: cifar10-jpeg-LT (IF 100) written as JPEG
files in the ImageNet-LT list-file layout when the data root has cifar10-jpeg.zip, else generated images.
Results (machine, versions, command, seed) go to results/benchmark/stream-<device>.{json,md}.

    .venv/bin/python benchmarks/stream.py              # about 2 minutes on 2 CPU cores
    .venv/bin/python benchmarks/stream.py --smoke      # a few batches, nothing written (used by the tests)
"""
import argparse, json, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch
import ltr_nb  # noqa: F401  (torchvision guard)
from fastai.vision.data import ImageDataLoaders
from fastai.vision.augment import RandomResizedCrop, FlipItem
from fastai.data.transforms import Normalize
from fastai.vision.core import imagenet_stats
from ltr_nb.core import env_info, real_data_root
from ltr_nb.data import LTData, lt_dataset
from ltr_nb.listfile import write_list_files, read_list_file, list_file_dls

ROOT = Path(__file__).resolve().parent.parent


def images(smoke, seed=0):
    "An LT dataset of images to write as files: cifar10-jpeg-LT when available, else random images with its counts."
    if not smoke and real_data_root('cifar10-jpeg.zip'):
        return lt_dataset('cifar10-jpeg', imb_factor=100), 'cifar10-jpeg-LT (IF 100), written as JPEG files'
    g = torch.Generator().manual_seed(seed)
    counts = [200, 90, 40, 18, 8] if smoke else [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    y = torch.arange(len(counts)).repeat_interleave(torch.tensor(counts))
    x = torch.randint(0, 256, (len(y), 3, 32, 32), dtype=torch.uint8, generator=g)
    v = torch.arange(len(counts)).repeat_interleave(2)
    return LTData('random', x, y, x[:len(v)], v, x[:len(v)], v, [f'c{i}' for i in range(len(counts))]), 'random 32x32 images, JPEG files'


def time_pass(dl, n):
    "Seconds for `n` batches from a fresh iterator of `dl` (worker start-up included)."
    t0 = time.perf_counter(); k = 0
    for xb, yb in dl:
        k += 1
        if k == n: break
    return time.perf_counter() - t0, k * dl.bs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=224); p.add_argument('--bs', type=int, default=64)
    p.add_argument('--workers', type=int, default=2); p.add_argument('--batches', type=int, default=25)
    p.add_argument('--repeats', type=int, default=5); p.add_argument('--sampler', default='cb')
    p.add_argument('--smoke', action='store_true', help='generated images, 3 batches, 1 repeat, no workers; writes nothing')
    p.add_argument('--out', default=str(ROOT / 'results' / 'benchmark'))
    a = p.parse_args(argv)
    if a.smoke: a.size, a.bs, a.workers, a.batches, a.repeats = 64, 16, 0, 3, 1
    data, what = images(a.smoke)
    tmp = Path(tempfile.mkdtemp(prefix='ltr_nb_stream_'))
    t0 = time.perf_counter(); lists = write_list_files(data, tmp, ext='jpg'); write_s = time.perf_counter() - t0
    ours = list_file_dls(tmp, lists['train'], lists['val'], size=a.size, bs=a.bs, sampler=a.sampler, num_workers=a.workers, seed=0)
    rows = []
    for split in ('train', 'val'):
        f, y = read_list_file(lists[split]); rows += [(str(q.relative_to(tmp)), int(l), split == 'val') for q, l in zip(f, y)]
    df = pd.DataFrame(rows, columns=['fname', 'label', 'is_valid'])
    theirs = ImageDataLoaders.from_df(df, path=tmp, fn_col='fname', label_col='label', valid_col='is_valid', bs=a.bs, num_workers=a.workers, seed=0,
                                      item_tfms=[RandomResizedCrop(a.size, min_scale=0.08, val_xtra=0.125), FlipItem(0.5)],
                                      batch_tfms=[Normalize.from_stats(*imagenet_stats)])
    res = {'a': [], 'b': []}
    time_pass(ours.train, 1); time_pass(theirs.train, 1)  # page cache warm for both
    for r in range(a.repeats):
        for k, dl in (('a', ours.train), ('b', theirs.train)):
            s, n = time_pass(dl, a.batches); res[k].append(n / s)
        print(f"repeat {r + 1}/{a.repeats}: a {res['a'][-1]:.0f} img/s, b {res['b'][-1]:.0f} img/s", flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    ratio = statistics.median([x / y for x, y in zip(res['a'], res['b'])])
    env = env_info(command='benchmarks/stream.py ' + ' '.join(argv if argv is not None else sys.argv[1:]), data=what, seed=0,
                   repeats=a.repeats, batches=a.batches, workers=a.workers, size=a.size, bs=a.bs, sampler=a.sampler,
                   n_train=len(data.y_train), write_files_s=round(write_s, 1))
    table = '\n'.join([
        f"Streaming loader throughput, images/s (median of {a.repeats} interleaved passes of {a.batches} batches), {what} "
        f"({len(data.y_train):,} training files), {a.size}x{a.size} crops, batch {a.bs}, {a.workers} workers, "
        f"{env['device']}, {env['cpus']} CPUs, torch {env['torch']}, fastai {env['fastai']}, {env['date']}", '',
        f"| (a) ltr_nb `list_file_dls`, sampler '{a.sampler}' | (b) fastai `ImageDataLoaders`, shuffle | a/b (target >= 0.95) |",
        '|---:|---:|---:|', f"| {med['a']:.0f} | {med['b']:.0f} | {ratio:.2f} |", '',
        f"Command: `LTR_NB_DATA=<data root> .venv/bin/python {env['command'].strip()}`"])
    if not a.smoke:
        out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
        dev = 'cuda' if torch.cuda.is_available() else 'cpu'
        (out / f'stream-{dev}.json').write_text(json.dumps(dict(env=env, a_ltr_nb=med['a'], b_fastai=med['b'], a_over_b=ratio, raw=res), indent=1))
        (out / f'stream-{dev}.md').write_text(table + '\n')
    print('\n' + table)
    return ratio


if __name__ == '__main__':
    main()
