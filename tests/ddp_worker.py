"""One process of the 2-process tests (launched by tests/test_distributed.py through torchrun; or alone, for the 1-process reference).

python tests/ddp_worker.py OUT {train,report,resume,plan,exit} [--epochs N] [--kill-after K] [--seed S] [--bs B] [--how exit|raise]
"""
import argparse, json, os, signal, sys
from pathlib import Path
import ltr_nb
import torch
import torch.distributed as dist
from fastai.callback.core import Callback
from ltr_nb.core import rank_world, all_sum
from ltr_nb.data import lt_dataset, Groups
from ltr_nb.train import TrainConfig, lt_learner, fit_lt
from ltr_nb.wb import MaxNorm
from ltr_nb.metrics import LTAccuracy, lt_report
from ltr_nb.distributed import init_distributed, distributed, finish_distributed, exit_together

p = argparse.ArgumentParser()
p.add_argument('out'); p.add_argument('what', choices=['train', 'report', 'resume', 'plan', 'exit'])
p.add_argument('--epochs', type=int, default=3); p.add_argument('--kill-after', type=int, default=None)
p.add_argument('--seed', type=int, default=0); p.add_argument('--bs', type=int, default=None); p.add_argument('--sampler', default='cb')
p.add_argument('--backend', default=None); p.add_argument('--how', choices=['exit', 'raise'], default='exit'); p.add_argument('--seed-per-rank', action='store_true')
p.add_argument('--data', default='digits', help="'digits' (in memory) or 'list:<folder>' (streamed from list files)")
a = p.parse_args()
out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
if a.what == 'exit':    # registered before the group exists, so it runs after the library's own exit handler
    import atexit
    atexit.register(lambda: (out / f"left{os.environ['RANK']}.json").write_text(json.dumps(dist.is_initialized())))
try: rank, world = init_distributed(a.backend, device='cpu')
except ValueError as e: exit_together(str(e), 2, prog='ddp_worker')
if a.seed_per_rank: a.seed += rank
if a.what == 'exit':    # a script that ends without finish_distributed, after a collective
    from ltr_nb.distributed import check_same
    check_same(a.seed, 'seed')
    if a.how == 'raise': raise RuntimeError('the script failed')
    sys.exit(0)

class Kill(Callback):
    "After epoch K is checkpointed (rank 0 writes before the barrier), every process kills itself with SIGKILL."
    order = 99
    def __init__(self, k): self.k = k
    def after_epoch(self):
        if self.epoch + 1 == self.k:
            if world > 1: dist.barrier()
            os.kill(os.getpid(), signal.SIGKILL)

if a.data.startswith('list:'):
    from ltr_nb.listfile import list_dataset
    dig = list_dataset(a.data, size=8, num_workers=0)
else: dig = lt_dataset(a.data)
n = len(dig.y_train)
bs = a.bs or 2 * (n // 20 // 2)          # about 20 batches of an even size
if a.what == 'plan':
    learn = lt_learner(dig, TrainConfig(epochs=1, lr=0.05, bs=bs, sampler=a.sampler, seed=a.seed), quiet=True)
    from ltr_nb.adapters import rank_dl
    from ltr_nb.distributed import check_same
    check_same(a.seed, 'seed')
    share = rank_dl(learn.dls.train, rank, world)
    idx = {e: [] for e in range(3)}
    for e in range(3):
        share.sampler.set_epoch(e); share.epoch = e
        pos = torch.cat([torch.arange(lo, hi) for _, _, lo, hi in share.plan()])
        idx[e] = dict(pos=pos.tolist(), idx=share.sampler.indices(e)[pos].tolist())
    (out / f'plan{rank}.json').write_text(json.dumps(dict(world=world, n=share.n, idx=idx)))
    sys.exit(0)
class ItemCount(Callback):
    "Training items this process saw per epoch, and validation items it scored (summed over processes at the end)."
    def before_fit(self): self.trained, self.scored = torch.zeros(a.epochs, dtype=torch.long), torch.zeros(a.epochs, dtype=torch.long)
    def after_batch(self):
        (self.trained if self.training else self.scored)[self.epoch] += len(self.yb[0])

cfg = TrainConfig(epochs=a.epochs, lr=0.05, bs=bs, sampler=a.sampler, seed=a.seed, arch='mlp' if a.data == 'digits' else 'smallcnn')
count = ItemCount()
learn = lt_learner(dig, cfg, path=out / 'run', quiet=True, cbs=[MaxNorm(0.5), count])
if a.what in ('train', 'resume'):
    cbs = [Kill(a.kill_after)] if a.kill_after else []
    try: fit_lt(learn, resume=a.what == 'resume' and (out / 'run' / 'models' / 'ck.pth').is_file(), ckpt='ck', cbs=cbs)
    except ValueError as e: exit_together(str(e), 2, prog='ddp_worker')
    sd = {k: v.tolist() for k, v in learn.model.state_dict().items()}
    (out / f'weights{rank}.json').write_text(json.dumps(dict(world=world, sd=sd, acc=[a.tolist() for a in learn.cls_acc_hist],
        seen=all_sum(count.trained).tolist(), scored=all_sum(count.scored).tolist(), n_valid=learn.dls.valid.n)))
else:   # report: the same fixed predictions scored by the metric under `world` processes
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(len(dig.y_test), dig.n_cls, generator=g); y = dig.y_test
    m = LTAccuracy(dig.cls_counts, 'few', Groups(60, 20))
    from types import SimpleNamespace
    from ltr_nb.sampling import rank_plan, eval_bs
    for s, e, lo, hi in rank_plan(len(y), eval_bs(len(y), 64, world), rank, world):
        m.accumulate(SimpleNamespace(pred=logits[lo:hi], yb=(y[lo:hi],)))
    c, t = m.counts()
    rep = dict(per_class=m.per_class.tolist(), few=m.value, n=int(t.sum()), ref=lt_report(logits, y, dig.cls_counts, Groups(60, 20)))
    (out / f'report{rank}.json').write_text(json.dumps(rep))

finish_distributed()
