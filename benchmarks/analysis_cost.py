#!/usr/bin/env python3
"""Cost of `ltr_nb.analysis.AnalysisRecorder` at its default settings: epoch time with and without it.

Joint training of the dataset's default model (Fashion-MNIST-LT IF 100 and its small CNN when the data root has it,
else digits-LT), `--epochs` epochs per run, runs interleaved (without, with, without, with, ...); the recorder at its
defaults (every epoch, 50 images per class). Reports the median seconds per epoch of each and the relative overhead
(target <= 5 %). Results (machine, versions, command, seed) go to results/benchmark/analysis-cost-<device>.{json,md}.

    .venv/bin/python benchmarks/analysis_cost.py            # about 3 minutes on 2 CPU cores with Fashion-MNIST-LT
    .venv/bin/python benchmarks/analysis_cost.py --smoke    # digits, 1 epoch, writes nothing (used by the tests)
"""
import argparse, json, statistics, sys, time
from pathlib import Path
import torch
import ltr_nb  # noqa: F401  (torchvision guard)
from ltr_nb.core import env_info, real_data_root
from ltr_nb.data import lt_dataset
from ltr_nb.train import recipe, lt_learner, fit_lt
from ltr_nb.analysis import AnalysisRecorder

ROOT = Path(__file__).resolve().parent.parent


def epoch_seconds(data, name, epochs, recorder, dev='cpu'):
    cfg = recipe(name, epochs=epochs, seed=0)
    learn = lt_learner(data, cfg, quiet=True, cbs=[AnalysisRecorder()] if recorder else [], device=dev)
    t0 = time.perf_counter(); fit_lt(learn)
    if torch.device(dev).type == 'cuda': torch.cuda.synchronize()
    s = (time.perf_counter() - t0) / epochs
    if recorder: assert len(learn.analysis_hist) == epochs
    return s


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=2); p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--smoke', action='store_true'); p.add_argument('--out', default=str(ROOT / 'results' / 'benchmark'))
    p.add_argument('--device', default=None, help='cpu, cuda or cuda:N (default: cuda if available)')
    a = p.parse_args(argv)
    dev = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if torch.device(dev).type == 'cuda' and not torch.cuda.is_available(): p.error(f"device={dev!r}: CUDA is not available on this machine")
    name = 'fashion-mnist' if not a.smoke and real_data_root('fashion-mnist') else 'digits'
    if a.smoke: a.epochs, a.repeats = 1, 1
    data = lt_dataset(name)
    res = {'without': [], 'with': []}
    for r in range(a.repeats):
        for k in res: res[k].append(epoch_seconds(data, name, a.epochs, k == 'with', dev))
        print(f"repeat {r + 1}/{a.repeats}: " + ', '.join(f"{k} {v[-1]:.2f} s/epoch" for k, v in res.items()), flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    over = statistics.median([w / wo - 1 for w, wo in zip(res['with'], res['without'])])
    env = env_info(command='benchmarks/analysis_cost.py ' + ' '.join(argv if argv is not None else sys.argv[1:]), data=repr(data),
                   epochs=a.epochs, repeats=a.repeats, seed=0, device_used=dev)
    where = torch.cuda.get_device_name(torch.device(dev)) if torch.device(dev).type == 'cuda' else f"CPU ({env['fp']['cpu_model']})"
    table = '\n'.join([f"AnalysisRecorder cost (defaults: every epoch, 50 images per class), {name}-LT, default model and recipe, "
                       f"median of {a.repeats} interleaved runs of {a.epochs} epochs, {where}, {env['cpus']} CPUs, torch {env['torch']}, {env['date']}", '',
                       '| without (s/epoch) | with (s/epoch) | overhead (target <= 5 %) |', '|---:|---:|---:|',
                       f"| {med['without']:.2f} | {med['with']:.2f} | {100 * over:.1f} % |", '',
                       f"Command: `LTR_NB_DATA=<data root> .venv/bin/python {env['command'].strip()}`"])
    if not a.smoke:
        out = Path(a.out); out.mkdir(parents=True, exist_ok=True); dev = torch.device(dev).type
        (out / f'analysis-cost-{dev}.json').write_text(json.dumps(dict(env=env, median_s=med, overhead=over, raw=res), indent=1))
        (out / f'analysis-cost-{dev}.md').write_text(table + '\n')
    print('\n' + table)
    return over


if __name__ == '__main__':
    main()
