#!/usr/bin/env python3
"""Training throughput: ltr_nb's device-tensor path in a fastai Learner vs a reference-style pipeline vs the bare model.

  (a) ltr_nb: uint8 tensors on the device, class-aware index sampler, batched crop+flip+normalise, fastai Learner
  (b) reference style: per-sample PIL transforms (RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize)
      in a torch DataLoader, plain PyTorch training loop (as the papers' reference code)
  (c) ceiling: the bare model's forward + backward + SGD step on pre-made device batches

Same model, batch size, optimizer and number of timed steps for all three; runs are interleaved (a, b, c, a, b, c, ...)
and the median over repeats is reported, with the ratios a/b and a/c measured in the same run. Results (machine,
torch version, threads, command, seeds) go to results/benchmark/throughput-<device>.{json,md}.

    .venv/bin/python benchmarks/throughput.py                 # both models, default steps (about 5 min on 2 CPU cores)
    .venv/bin/python benchmarks/throughput.py --smoke         # a few steps, to check that it runs (used by the tests)
"""
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
import torch.nn as nn
import ltr_nb  # noqa: F401  (torchvision guard)
from fastai.learner import CancelFitException
from fastai.callback.core import Callback
from ltr_nb.core import env_info, real_data_root, seed_everything
from ltr_nb.data import LTData, lt_dataset, img_num_per_cls
from ltr_nb.loaders import channel_stats, lt_dls
from ltr_nb.models import create_model
from ltr_nb.train import TrainConfig, lt_learner

ROOT = Path(__file__).resolve().parent.parent


def cifar_lt_data(n_max=5000, imb_factor=100, seed=0, random=False):
    "cifar10-jpeg-LT (IF 100, 12,406 images) when the data root has it, else random uint8 images of the same shape and counts."
    if not random and real_data_root('cifar10-jpeg.zip'):
        return lt_dataset('cifar10-jpeg', imb_factor=imb_factor, n_max=n_max, val_per_class=0), 'cifar10-jpeg-LT (IF 100)'
    g = torch.Generator().manual_seed(seed)
    counts = img_num_per_cls(n_max, 10, imb_factor)
    y = torch.arange(10).repeat_interleave(torch.tensor(counts))
    x = torch.randint(0, 256, (len(y), 3, 32, 32), dtype=torch.uint8, generator=g)
    z = torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    return LTData('cifar10', x, y, z, y[:0], x[:100], y[:100], [str(i) for i in range(10)]), 'random uint8 images, CIFAR-10-LT counts'


class _StopAfter(Callback):
    "Time `n` training steps after `warmup` steps, then stop the fit; `learn.warmup_s`: seconds of the warm-up steps."
    order = 100
    def __init__(self, warmup, n): self.warmup, self.n, self.i = warmup, n, 0
    def before_fit(self): self.t_fit = time.perf_counter()
    def after_step(self):
        self.i += 1
        if self.i in (self.warmup, self.warmup + self.n): _sync(self.learn.dls.device)     # GPU work is asynchronous
        if self.i == self.warmup: self.t0 = time.perf_counter(); self.learn.warmup_s = self.t0 - self.t_fit
        if self.i == self.warmup + self.n: self.learn.elapsed = time.perf_counter() - self.t0; raise CancelFitException


def _sync(dev):
    "Wait for the device's queued work (CUDA) before reading a timer."
    if torch.device(dev or 'cpu').type == 'cuda': torch.cuda.synchronize()


def run_ltr_nb(data, arch, bs, steps, warmup, channels_last, bf16=False, compile=False, dev='cpu'):
    "(images/s, seconds of the first `warmup` steps) of (a); torch.compile compiles in those steps."
    cfg = TrainConfig(epochs=1000, lr=0.01, bs=bs, wd=5e-4, arch=arch, sampler='ib', seed=0, channels_last=channels_last, bf16=bf16, compile=compile)
    learn = lt_learner(data, cfg, quiet=True, cbs=[_StopAfter(warmup, steps)], device=dev)
    learn.fit(cfg.epochs, cfg.lr)
    return steps * bs / learn.elapsed, learn.warmup_s


def run_data_path(data, bs, steps, warmup, dev='cpu'):
    "Milliseconds per batch of (a)'s data path alone: sample indices, gather, crop + flip + normalise."
    it = iter(lt_dls(data, bs=bs, sampler='ib', seed=0, device=dev).train)
    for _ in range(warmup): next(it)
    _sync(dev); t0 = time.perf_counter()
    for _ in range(steps): next(it)
    _sync(dev)
    return (time.perf_counter() - t0) / steps * 1000


def run_reference(data, arch, bs, steps, warmup, workers, channels_last, dev='cpu'):
    import torchvision.transforms as T
    from PIL import Image
    mean, std = channel_stats(data.x_train)
    tfm = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean.tolist(), std.tolist())])
    imgs = data.x_train.permute(0, 2, 3, 1).numpy()

    class DS(torch.utils.data.Dataset):
        def __len__(self): return len(imgs)
        def __getitem__(self, i): return tfm(Image.fromarray(imgs[i])), int(data.y_train[i])
    dl = torch.utils.data.DataLoader(DS(), batch_size=bs, shuffle=True, num_workers=workers, drop_last=True,
                                     persistent_workers=workers > 0)
    seed_everything(0)
    model = create_model(arch, data.n_cls).to(dev)
    if channels_last: model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train(); i = 0; t0 = None
    while True:
        for xb, yb in dl:
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            loss = nn.functional.cross_entropy(model(xb), yb); opt.zero_grad(); loss.backward(); opt.step(); i += 1
            if i == warmup: _sync(dev); t0 = time.perf_counter()
            if i == warmup + steps: _sync(dev); return steps * bs / (time.perf_counter() - t0)


def run_bare(data, arch, bs, steps, warmup, channels_last, dev='cpu'):
    seed_everything(0)
    model = create_model(arch, data.n_cls).to(dev)
    if channels_last: model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    xs = [((data.x_train[i * bs:(i + 1) * bs].float() / 255 - 0.5) / 0.25).to(dev) for i in range(4)]
    ys = [data.y_train[i * bs:(i + 1) * bs].to(dev) for i in range(4)]
    model.train()
    for i in range(warmup + steps):
        if i == warmup: _sync(dev); t0 = time.perf_counter()
        loss = nn.functional.cross_entropy(model(xs[i % 4]), ys[i % 4]); opt.zero_grad(); loss.backward(); opt.step()
    _sync(dev)
    return steps * bs / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--archs', default='resnet32,resnet34')
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--steps', default='resnet32=30,resnet34=6', help='timed steps per run, per arch')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--workers', type=int, default=2, help='DataLoader workers of the reference pipeline')
    p.add_argument('--channels_last', action='store_true', help='channels_last memory format in all three paths')
    p.add_argument('--random_data', action='store_true', help='random uint8 images with CIFAR-10-LT counts instead of cifar10-jpeg-LT')
    p.add_argument('--variants', default='resnet32', help="archs for which (a) is also timed with channels_last, bf16 autocast and torch.compile ('' for none)")
    p.add_argument('--no_compile', action='store_true', help='leave torch.compile out of the variants')
    p.add_argument('--smoke', action='store_true', help='2 steps, 1 repeat, resnet32 only, no torch.compile: check that it runs')
    p.add_argument('--device', default=None, help='cpu, cuda or cuda:N: where all three paths train (default: cuda if available)')
    p.add_argument('--out', default=str(ROOT / 'results' / 'benchmark'))
    a = p.parse_args(argv)
    if a.smoke: a.archs, a.steps, a.warmup, a.repeats, a.bs, a.variants, a.workers, a.no_compile = 'resnet32', 'resnet32=2', 1, 1, 32, 'resnet32', 0, True
    # a fresh inductor cache: the first compiled repeat pays the full (cold) compilation, as a new machine would
    os.environ['TORCHINDUCTOR_CACHE_DIR'] = tempfile.mkdtemp(prefix='ltr_nb_inductor_')
    steps = dict(kv.split('=') for kv in a.steps.split(','))
    dev = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if torch.device(dev).type == 'cuda' and not torch.cuda.is_available(): p.error(f"device={dev!r}: CUDA is not available on this machine")
    data, what = cifar_lt_data(random=a.smoke or a.random_data)
    rows = []
    for arch in a.archs.split(','):
        n = int(steps.get(arch, 10)); res = {'a': [], 'b': [], 'c': []}
        data_ms = run_data_path(data, a.bs, max(n, 20), a.warmup, dev)
        for r in range(a.repeats):  # interleaved
            res['a'].append(run_ltr_nb(data, arch, a.bs, n, a.warmup, a.channels_last, dev=dev)[0])
            res['b'].append(run_reference(data, arch, a.bs, n, a.warmup, a.workers, a.channels_last, dev))
            res['c'].append(run_bare(data, arch, a.bs, n, a.warmup, a.channels_last, dev))
            print(f"{arch} repeat {r + 1}/{a.repeats}: " + ', '.join(f"{k} {v[-1]:.0f} img/s" for k, v in res.items()), flush=True)
        med = {k: statistics.median(v) for k, v in res.items()}
        # ratios per repeat (same-run pairs), then the median
        ab = statistics.median([x / y for x, y in zip(res['a'], res['b'])]); ac = statistics.median([x / y for x, y in zip(res['a'], res['c'])])
        rows.append(dict(arch=arch, steps=n, bs=a.bs, a_ltr_nb=med['a'], b_reference=med['b'], c_bare=med['c'], a_over_b=ab, a_over_c=ac, data_ms=data_ms, raw=res))
    var_rows = []
    for arch in [v for v in a.variants.split(',') if v]:
        n = int(steps.get(arch, 10)); names = ['fp32', 'channels_last', 'bf16'] + ([] if a.no_compile else ['compile', 'compile_cl'])
        res, wup = {k: [] for k in names}, {k: [] for k in names}
        for r in range(a.repeats):  # interleaved
            for k in names:  # bf16: fewer steps, slow on CPUs without bf16 units
                ips, w = run_ltr_nb(data, arch, a.bs, max(2, n // 5) if k == 'bf16' else n, a.warmup, k in ('channels_last', 'compile_cl'),
                                    bf16=k == 'bf16', compile=k.startswith('compile'), dev=dev)
                res[k].append(ips); wup[k].append(w)
            print(f"{arch} variants repeat {r + 1}/{a.repeats}: " + ', '.join(f"{k} {v[-1]:.0f} img/s" for k, v in res.items()), flush=True)
        row = dict(arch=arch, **{k: statistics.median(v) for k, v in res.items()},
                   **{f'{k}_over_fp32': statistics.median([x / y for x, y in zip(v, res['fp32'])]) for k, v in res.items() if k != 'fp32'},
                   warmup_s=wup, raw=res)
        if not a.no_compile:  # one-off cost of compiling (first repeat: empty cache) and the steps it takes to earn it back
            step = lambda k: a.bs / row[k]
            row['compile_overhead_s'] = wup['compile'][0] - wup['fp32'][0]
            saved = step('fp32') - step('compile')
            row['compile_break_even_steps'] = row['compile_overhead_s'] / saved if saved > 0 else float('inf')
        var_rows.append(row)
    env = env_info(command='benchmarks/throughput.py ' + ' '.join(argv if argv is not None else sys.argv[1:]), data=what,
                   repeats=a.repeats, warmup=a.warmup, workers=a.workers, channels_last=a.channels_last, seed=0, device_used=dev)
    where = torch.cuda.get_device_name(torch.device(dev)) if torch.device(dev).type == 'cuda' else f"CPU ({env['fp']['cpu_model']})"
    dev = torch.device(dev).type
    lines = [f"Training throughput, images/s (median of {a.repeats} interleaved repeats), {what}, batch {a.bs}, "
             f"{where}, {env['cpus']} CPUs, {env['torch_threads']} torch threads, torch {env['torch']}, {env['date']}", '',
             '| model | timed steps | (a) ltr_nb + fastai | (b) reference pipeline | (c) bare model | a/b | a/c | (a) step, of it data path (ms) |',
             '|---|---:|---:|---:|---:|---:|---:|---:|']
    lines += [f"| {r['arch']} | {r['steps']} | {r['a_ltr_nb']:.0f} | {r['b_reference']:.0f} | {r['c_bare']:.0f} | {r['a_over_b']:.2f} | {r['a_over_c']:.2f} "
              f"| {1000 * a.bs / r['a_ltr_nb']:.0f}, {r['data_ms']:.1f} |" for r in rows]
    if var_rows:
        cols = [k for k in ('channels_last', 'bf16', 'compile', 'compile_cl') if k in var_rows[0]]
        title = dict(channels_last='channels_last', bf16='bf16 autocast', compile='torch.compile', compile_cl='compile + channels_last')
        lines += ['', '(a) with the speed options of `TrainConfig` (images/s, ratio to float32 in the same run):', '',
                  '| model | float32 | ' + ' | '.join(title[k] for k in cols) + ' |', '|---|---:|' + '---:|' * len(cols)]
        lines += [f"| {r['arch']} | {r['fp32']:.0f} | " + ' | '.join(f"{r[k]:.0f} ({r[k + '_over_fp32']:.2f}x)" for k in cols) + ' |' for r in var_rows]
        for r in var_rows:
            if 'compile_overhead_s' in r:
                lines += ['', f"torch.compile ({r['arch']}): the first {a.warmup} steps take {r['compile_overhead_s']:.0f} s longer than eager "
                          f"(compilation, empty cache); at the measured step times that is earned back after "
                          f"{r['compile_break_even_steps']:.0f} steps ({r['compile_break_even_steps'] * a.bs / len(data.y_train):.1f} epochs of "
                          f"{len(data.y_train):,} images). Evaluation compiles once more (eval mode)."]
    table = '\n'.join(lines)
    if not a.smoke:
        out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
        (out / f'throughput-{dev}.json').write_text(json.dumps(dict(env=env, rows=rows, variants=var_rows), indent=1))
        (out / f'throughput-{dev}.md').write_text(table + '\n')
    print('\n' + table)
    return rows


if __name__ == '__main__':
    main()
