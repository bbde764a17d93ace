#!/usr/bin/env python3
"""End-to-end wall time of the weight-balancing recipe (Alshammari et al. 2022) with ltr_nb's training path.

Stage 1: joint training, instance-balanced sampling, SGD + momentum, cosine to 0, weight decay 5e-3 (the paper's tuned
value for CIFAR-LT); stage 2: the classifier of the frozen body, class-balanced loss, weight decay 0.1 and MaxNorm
(`ltr_nb.methods.weight_balancing`). Defaults are the paper's recipe on cifar10-jpeg-LT (IF 100): the ResNet-34 variant,
batch 64, lr 0.01, 320 + 10 epochs. That is a GPU job (on two CPU cores one ResNet-34 epoch takes about 15 minutes).
The time covers everything from loading the data to the test reports; it goes with the test accuracy of both
stages, the machine, versions, command and seed to results/benchmark/wb-recipe-<device>.{json,md}.

    LTR_NB_DATA=<data root> .venv/bin/python benchmarks/wb_recipe.py --channels_last   # the full recipe (GPU)
    .venv/bin/python benchmarks/wb_recipe.py --smoke                                 # digits, 2 + 1 epochs: check that it runs
"""
import argparse, json, sys, time
from pathlib import Path
import torch
import ltr_nb  # noqa: F401  (torchvision guard)
from ltr_nb.core import env_info
from ltr_nb.data import lt_dataset
from ltr_nb.metrics import results_table
from ltr_nb.train import recipe, TrainedEpochCallback
from ltr_nb.wb import WBConfig
from ltr_nb.methods import weight_balancing

ROOT = Path(__file__).resolve().parent.parent


class _EpochLog(TrainedEpochCallback):
    "Print a line every `every` training epochs (and the last); keep the wall-clock time of each epoch's end."
    order = 90
    def __init__(self, every, t0): self.every, self.t0, self.ends = every, t0, []
    def after_trained_epoch(self):
        self.ends.append(time.perf_counter() - self.t0)
        e, n = self.learn.epoch + 1, self.learn.n_epoch
        if e % self.every == 0 or e == n:
            acc = self.learn.final_record[2] if len(self.learn.final_record) > 2 else float('nan')
            print(f"stage 1 epoch {e}/{n}: {self.ends[-1]:.0f} s, val acc {acc:.3f}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='cifar10-jpeg')
    p.add_argument('--imb_factor', type=float, default=100)
    p.add_argument('--n_max', type=int, default=None, help='images of the largest class (default: all the pool allows)')
    p.add_argument('--val_per_class', type=int, default=None, help="held-out validation images per class (default: lt_dataset's, 20)")
    p.add_argument('--arch', default='resnet34')
    p.add_argument('--epochs', type=int, default=320, help='stage-1 epochs')
    p.add_argument('--stage2_epochs', type=int, default=10)
    p.add_argument('--bs', type=int, default=64)
    p.add_argument('--lr', type=float, default=0.01)
    p.add_argument('--wd', type=float, default=5e-3, help='stage-1 weight decay')
    p.add_argument('--stage2_wd', type=float, default=0.1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--channels_last', action='store_true')
    p.add_argument('--bf16', action='store_true', help='bfloat16 autocast (GPUs)')
    p.add_argument('--compile', action='store_true', help='torch.compile the model')
    p.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    p.add_argument('--every', type=int, default=10, help='print a progress line every this many epochs')
    p.add_argument('--data_root', default=None, help='default: $LTR_NB_DATA')
    p.add_argument('--smoke', action='store_true', help='digits-LT, small CNN, 2 + 1 epochs, nothing written: check that it runs')
    p.add_argument('--out', default=str(ROOT / 'results' / 'benchmark'))
    a = p.parse_args(argv)
    if a.smoke: a.dataset, a.imb_factor, a.arch, a.epochs, a.stage2_epochs, a.bs, a.every = 'digits', 10, 'smallcnn', 2, 1, 32, 1
    dev = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    # everything is checked (configs, data) before the clock that matters starts
    stage2 = WBConfig(epochs=a.stage2_epochs, lr=a.lr, bs=a.bs, wd=a.stage2_wd, seed=a.seed)
    t0 = time.perf_counter()
    data = lt_dataset(a.dataset, a.imb_factor, n_max=a.n_max, val_per_class=a.val_per_class, root=a.data_root)
    t_data = time.perf_counter() - t0
    cfg = recipe(a.dataset, epochs=a.epochs, lr=a.lr, bs=a.bs, wd=a.wd, arch=a.arch, sampler='ib', seed=a.seed,
                 channels_last=a.channels_last, bf16=a.bf16, compile=a.compile)
    print(f"{data}\nstage 1: {cfg}\nstage 2: {stage2}\non {dev}", flush=True)
    log = _EpochLog(a.every, t0)
    r = weight_balancing(data, cfg, stage2, device=dev, cbs=[log])
    if dev.startswith('cuda'): torch.cuda.synchronize()
    total = time.perf_counter() - t0
    t_stage1 = log.ends[-1] - t_data
    env = env_info(command='benchmarks/wb_recipe.py ' + ' '.join(argv if argv is not None else sys.argv[1:]), device_used=dev,
                   seed=a.seed, data=data.info)
    c = data.cls_counts
    lines = [f"Weight balancing end to end: {a.dataset}-LT ({len(data.y_train):,} training images, {max(c)} to {min(c)} per class), {a.arch}, "
             f"{a.epochs} + {a.stage2_epochs} epochs, "
             f"batch {a.bs}, {env['device']}, torch {env['torch']}, {env['date']}, seed {a.seed}"
             + (', channels_last' if a.channels_last else '') + (', bf16' if a.bf16 else '') + (', compiled' if a.compile else ''), '',
             '| wall time | seconds |', '|---|---:|', f"| data loading | {t_data:.1f} |",
             f"| stage 1 ({a.epochs} epochs, incl. per-epoch validation) | {t_stage1:.1f} |",
             f"| stage 1 evaluation, stage 2 ({a.stage2_epochs} epochs), reports | {total - log.ends[-1]:.1f} |", f"| **total** | **{total:.1f}** |", '',
             'Test top-1 (%; a group without classes shows –):', '',
             results_table({f"stage 1 (wd {a.wd:g})": r['trained']['test'], 'WB (stage 2)': r['test']}, data.cls_counts)]
    table = '\n'.join(lines)
    if not a.smoke:
        out = Path(a.out); out.mkdir(parents=True, exist_ok=True); d = 'cuda' if dev.startswith('cuda') else 'cpu'
        rec = dict(env=env, seconds=dict(data=t_data, stage1=t_stage1, total=total), epoch_ends_s=log.ends, stage1_config=cfg.__dict__,
                   stage2_config=stage2.__dict__, stage1_test=r['trained']['test'], test=r['test'], valid=r['valid'])
        (out / f'wb-recipe-{d}.json').write_text(json.dumps(rec, indent=1, default=float))
        (out / f'wb-recipe-{d}.md').write_text(table + '\n')
    print('\n' + table)
    return total


if __name__ == '__main__':
    try: main()
    except (ValueError, FileNotFoundError) as e: sys.exit(f"wb_recipe: error: {e}")
