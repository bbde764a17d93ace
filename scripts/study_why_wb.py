#!/usr/bin/env python3
"""Why weight balancing works (Hasegawa & Sato, 2024), on Fashion-MNIST-LT (IF 100): long runs, then the analysis.

Three stage-1 runs per seed, each `--epochs` epochs of SGD + cosine with the library's Fashion-MNIST recipe (small CNN,
batch 128, lr 0.05, instance-balanced sampling), the per-epoch analysis (`AnalysisRecorder`: FDR, cone statistics,
NC measures, weight norms on 50 training images per class); the last and the best-on-validation weights are kept:

    ce        cross-entropy with the usual small weight decay 5e-4 (the papers' "naive" baseline)
    wd        cross-entropy with weight decay 5e-3 (weight balancing's stage 1)
    onestage  Hasegawa & Sato's one stage: weight decay 5e-3 as a loss term + feature regularisation 0.01
              + a fixed simplex-ETF classifier (weight frozen and not decayed, bias trained)

Every run checkpoints each epoch and resumes where it stopped when the command is repeated; a finished run is
skipped. `--post` then evaluates the last epoch (the runner's rule; `--select best` for the best on validation), per
seed whose three runs are finished: the decoupled heads and post-hoc logit adjustment (additive and multiplicative, τ
chosen on validation) on `ce`, weight balancing's stage 2 (the library's defaults, and its weight decay and MaxNorm
radius chosen on validation over the fmnist-lt suite's grid) and post-hoc LA on `wd`, LA on `onestage`, the analysis of the final features (FDR, cone effect per stage for trained, random
and noise inputs, NC), and stage 2 read as a logit adjustment; then the table over seeds (mean ± std).

    .venv/bin/python scripts/study_why_wb.py --seeds 0 1 2 --worker 0/2 &    # two 1-thread workers share the jobs
    .venv/bin/python scripts/study_why_wb.py --seeds 0 1 2 --worker 1/2 &
    .venv/bin/python scripts/study_why_wb.py --seeds 0 1 2 --post            # when they are done (about 2 minutes)

About 14 s per epoch and worker on this 2-core machine (1 thread each): 100 epochs ≈ 25 minutes per run.
Records go to results/why-wb-fmnist-lt/ (`--out`); the tutorial nbs/tutorials/05_why_weight_balancing.ipynb reads them.
"""
import argparse, json, math, sys, time
from dataclasses import asdict
from pathlib import Path
import numpy as np
import torch
import ltr_nb  # noqa: F401  (torchvision guard)
from fastai.torch_core import set_seed
from ltr_nb.core import env_info
from ltr_nb.data import lt_dataset, Groups
from ltr_nb.train import recipe, lt_learner, fit_lt, evaluate, default_model, TrainedEpochCallback, BestValid
from ltr_nb.models import get_classifier, DEFAULT_ARCH
from ltr_nb.heads import decoupled_heads
from ltr_nb.evaluate import cache_features, feats_report, predict_features
from ltr_nb.wb import WBConfig, wb_stage2, maxnorm_radius
from ltr_nb.methods import METHODS, RowContext
from ltr_nb.onestage import with_etf, onestage_learner
from ltr_nb.logit_adjust import class_priors, logit_adjust, tune_la, LA_TAUS
from ltr_nb.folder import write_json
from ltr_nb.core import load_state
from ltr_nb.analysis import AnalysisRecorder, fdr, cone_stats, cone_by_stage, nc_measures, stratified_subset

ROOT = Path(__file__).resolve().parent.parent
GROUPS = Groups(1000, 200)      # Fashion-MNIST-LT IF 100: Many > 1000 / Few < 200 images
RUNS = {'ce': dict(wd=5e-4), 'wd': dict(wd=5e-3), 'onestage': dict(wd=0.0, wd_loss=5e-3, fr=0.01)}
WEIGHTS = {'last': 'final.pth', 'best': 'best.pth'}     # last epoch: the runner's rule, used by every table of the project
STAGE2_GRID = dict(wd2=[0, 1e-4, 1e-3, 1e-2, 0.1], r=[0, 0.1, 0.2, 0.5, 1.0])   # the fmnist-lt suite's wb-paper grid


def norm_fit(w1, w2, counts, inside=None) -> dict:
    "Stage 2 read as a multiplicative LA: log(|w2_c| / |w1_c|) against log pi_c (slope -tau), over all rows or the rows `inside`."
    lr = (w2.norm(dim=1) / w1.norm(dim=1)).log().double().numpy(); lp = class_priors(counts).log().numpy()
    keep = np.ones(len(lr), bool) if inside is None else np.asarray(inside)
    out = dict(log_norm_ratio=lr.tolist(), log_prior=lp.tolist(), rows=int(keep.sum()))
    if keep.sum() < 3: return dict(out, implied_tau=None, intercept=None, r2=None)
    slope, icpt = np.polyfit(lp[keep], lr[keep], 1)
    return dict(out, implied_tau=float(-slope), intercept=float(icpt), r2=float(np.corrcoef(lp[keep], lr[keep])[0, 1] ** 2))
STAGES = {'smallcnn': ['body.2', 'body.5', 'body.9', 'body.13', 'body.15'], 'mlp': ['body.1', 'body.3']}


class EpochLog(TrainedEpochCallback):
    "Mean training loss and seconds of every trained epoch (`learn.loss_hist`, `learn.time_hist`), printed as a log line."
    order = 66
    def __init__(self, run_name): self.run_name = run_name
    def before_fit(self):
        for k in ('loss_hist', 'time_hist'):
            if not hasattr(self.learn, k): setattr(self.learn, k, [])
    def before_train(self): super().before_train(); self.t0, self.tot, self.n = time.perf_counter(), 0., 0
    def after_batch(self):
        if self.learn.training: self.tot += float(self.learn.loss.detach()) * len(self.learn.yb[0]); self.n += len(self.learn.yb[0])
    def after_trained_epoch(self):
        loss = self.tot / max(self.n, 1)
        self.learn.loss_hist.append(loss); self.learn.time_hist.append(time.perf_counter() - self.t0)
        a = self.learn.analysis_hist[-1] if getattr(self.learn, 'analysis_hist', None) else {}
        print(f"{self.run_name} epoch {self.learn.epoch + 1}/{self.learn.n_epoch}: loss {loss:.4f}, valid mean/class "
              f"{100 * np.mean(self.learn.cls_acc_hist[-1]):.1f} %, FDR {a.get('fdr', float('nan')):.2f}, "
              f"{self.learn.time_hist[-1]:.1f} s", flush=True)
        if not math.isfinite(loss): raise FloatingPointError(f"{self.run_name} diverged at epoch {self.learn.epoch + 1}: training loss {loss}")


def model_for(run, data, seed):
    "The run's model as its training started (loading a saved state into it needs the same architecture and classifier)."
    set_seed(seed, reproducible=True); m = default_model(data)
    return (with_etf(m, seed=seed) if run == 'onestage' else m), DEFAULT_ARCH.get(data.name, 'resnet32')


def cfg_for(run, data, seed, epochs):
    return recipe(data.name, epochs=epochs, seed=seed, wd=RUNS[run]['wd'], sampler='ib', many=GROUPS.many, few=GROUPS.few)


def learner_for(run, data, seed, epochs, d):
    cfg = cfg_for(run, data, seed, epochs)
    cbs = [AnalysisRecorder(), BestValid(), EpochLog(f'{run}-s{seed}')]
    if run == 'onestage': return onestage_learner(data, cfg, RUNS[run]['wd_loss'], RUNS[run]['fr'], path=d, quiet=True, cbs=cbs), cfg
    return lt_learner(data, cfg, path=d, quiet=True, cbs=cbs), cfg


def train_run(run, seed, epochs, out, data):
    d = out / 'runs' / f'{run}-s{seed}'; rec = d / 'record.json'
    if rec.is_file(): print(f'{run}-s{seed}: done, skipped'); return
    d.mkdir(parents=True, exist_ok=True)
    learn, cfg = learner_for(run, data, seed, epochs, d)
    resume = (d / 'models' / 'ckpt.pth').is_file()
    t0 = time.perf_counter(); status = 'done'
    try: fit_lt(learn, resume=resume, ckpt='ckpt')
    except FloatingPointError as e: status = f'diverged: {e}'
    ok = all(torch.isfinite(p).all() for p in learn.model.parameters())
    if not ok and status == 'done': status = 'diverged: non-finite weights'
    res = dict(run=run, seed=seed, status=status, epochs=epochs, spec=RUNS[run], config=asdict(cfg), data=data.info,
               env=env_info(seed=seed, command=' '.join(sys.argv), resumed=resume, wall_s_this_process=time.perf_counter() - t0),
               hists=dict(wnorm=learn.wnorm_hist, valid_cls_acc=learn.cls_acc_hist, analysis=learn.analysis_hist,
                          loss=learn.loss_hist, epoch_s=learn.time_hist))
    if status == 'done':
        torch.save(learn.model.state_dict(), d / 'models' / 'final.pth')
        res['final'] = dict(test=evaluate(learn, 'test'), valid=evaluate(learn, 'valid'))
        learn.model.load_state_dict(load_state(d / 'models' / 'best.pth', 'best weights'))
        res['best'] = dict(epoch=learn.valid_best[1], test=evaluate(learn, 'test'), valid=evaluate(learn, 'valid'))
        (d / 'models' / 'ckpt.pth').unlink(missing_ok=True)
    write_json(rec, res)
    print(f"{run}-s{seed}: {status}" + (f", best epoch {res['best']['epoch'] + 1}, test mean/class {100 * res['best']['test']['mean_cls']:.1f} %" if status == 'done' else ''))


def la_rows(name, m, f, kinds=('mult',)):
    "Post-hoc logit adjustment of model `m` on cached features `f`, τ chosen on validation (mean per-class accuracy)."
    out = {}
    for kind in kinds:
        t = tune_la(m, feats=f, kind=kind, taus=LA_TAUS, groups=GROUPS)
        out[f'{name} + post-hoc LA ({kind})'] = dict(test=feats_report(t['model'], f, 'test', GROUPS), tau=t['tau'],
                                                     sweep=dict(taus=t['sweep']['taus'], valid_mean_cls=[r['mean_cls'] for r in t['sweep']['reports']]))
    return out


def analyse(m, f, data, arch, seed):
    "Analysis of the trained model `m`: FDR, cone statistics and NC of all training features; cone effect per stage."
    W = get_classifier(m, linear=True).weight.detach().cpu()
    out = dict(fdr=fdr(f.train, f.y_train), cone=cone_stats(f.train, f.y_train), nc=nc_measures(f.train, f.y_train, W),
               wnorm=W.norm(dim=1).tolist(), feat_norm=[float(f.train[f.y_train == c].norm(dim=1).mean()) for c in range(data.n_cls)],
               w_cos=torch.nn.functional.normalize(W, dim=1).matmul(torch.nn.functional.normalize(W, dim=1).T).tolist())
    idx = stratified_subset(torch.as_tensor(data.y_train), 50, seed)
    from ltr_nb.loaders import lt_dls
    norm = lt_dls(data, bs=64).train.norm
    x = norm(torch.as_tensor(data.x_train[idx])); y = torch.as_tensor(data.y_train[idx])
    rnd, _ = model_for('ce', data, seed + 1000)
    g = torch.Generator().manual_seed(seed)
    layers = STAGES[arch]
    out['cone_by_stage'] = dict(trained=cone_by_stage(m, x, y, layers), random_init=cone_by_stage(rnd, x, y, layers),
                                noise=cone_by_stage(m, torch.randn(x.shape, generator=g), y, layers))
    return out


def post(seed, out, data, select='last'):
    runs = {}
    for r in RUNS:
        rec = out / 'runs' / f'{r}-s{seed}' / 'record.json'
        if not rec.is_file(): print(f'seed {seed}: {r} not finished; no post-processing'); return None
        runs[r] = json.loads(rec.read_text())
        if runs[r]['status'] != 'done': print(f"seed {seed}: {r} {runs[r]['status']}"); return None
    models, feats = {}, {}
    for r in RUNS:
        m, arch = model_for(r, data, seed)
        m.load_state_dict(load_state(out / 'runs' / f'{r}-s{seed}' / 'models' / WEIGHTS[select], f'{select}-epoch weights')); models[r] = m.eval()
        feats[r] = cache_features(m, data)
    counts = data.cls_counts; rows = {}
    rows['CE (WD 5e-4)'] = dict(test=feats_report(models['ce'], feats['ce'], 'test', GROUPS))
    hd = decoupled_heads(models['ce'], data, groups=GROUPS)
    for k, v in hd.items(): rows[f"CE + {dict(ncm='NCM', crt='cRT', tau_norm='τ-norm', lws='LWS')[k]}"] = dict(test=v['test'], **({'tau': v['tau']} if 'tau' in v else {}))
    rows.update(la_rows('CE', models['ce'], feats['ce'], ('add', 'mult')))
    rows['WD 5e-3 (stage 1)'] = dict(test=feats_report(models['wd'], feats['wd'], 'test', GROUPS))
    rows.update(la_rows('WD 5e-3', models['wd'], feats['wd'], ('add', 'mult')))
    wb = wb_stage2(models['wd'], data, WBConfig(seed=seed), feats=feats['wd'])
    rows['WB (WD 5e-3 + stage 2, defaults)'] = dict(test=feats_report(wb, feats['wd'], 'test', GROUPS))
    ctx = RowContext(seed=seed, device='cpu', groups=GROUPS)     # stage 2's WD and radius chosen on validation, the method's own post
    tw = METHODS['wb'].post(models['wd'], data, dict(wd=5e-3, **STAGE2_GRID), ctx)
    rows['WB (WD 5e-3 + stage 2 tuned)'] = dict(test=tw['test'], stage2=tw['tuned']['best'], curve=tw['tuned']['curve'])
    rows['one-stage (WD + FR + ETF)'] = dict(test=feats_report(models['onestage'], feats['onestage'], 'test', GROUPS))
    rows.update(la_rows('one-stage', models['onestage'], feats['onestage'], ('mult',)))
    # stage 2 read as a logit adjustment: the log-ratio of WB's row norms to stage 1's against log π (slope -τ, multiplicative LA)
    # MaxNorm caps rows at its radius and can force a straight line; so the fit is also made on the rows inside the radius,
    # and on stage 2 without MaxNorm; the agreement with LA also at the τ the norms imply (no validation set involved)
    fc1, fc2 = get_classifier(models['wd']), get_classifier(wb)
    w1, w2 = fc1.weight.detach(), fc2.weight.detach()
    radius = maxnorm_radius(fc1, WBConfig().r)
    free = wb_stage2(models['wd'], data, WBConfig(seed=seed, maxnorm=False), feats=feats['wd'])
    fit, fit_free = norm_fit(w1, w2, counts), norm_fit(w1, get_classifier(free).weight.detach(), counts)
    fit_inside = norm_fit(w1, w2, counts, inside=(w2.norm(dim=1) < radius * (1 - 1e-3)).numpy())
    z1, z2 = predict_features(fc1, feats['wd'].test), predict_features(fc2, feats['wd'].test)
    tau_la = rows['WD 5e-3 + post-hoc LA (mult)']['tau']
    agree = lambda tau: float((z2.argmax(1) == logit_adjust(z1, class_priors(counts), tau, 'mult').argmax(1)).double().mean())
    implicit = dict(**fit, radius=radius, inside=fit_inside, no_maxnorm=fit_free,
                    mean_logit_shift=(z2 - z1).mean(0).tolist(), tau_la_valid=tau_la, agree_wb_la=agree(tau_la),
                    agree_wb_la_implied=agree(fit['implied_tau']), agree_wb_stage1=float((z2.argmax(1) == z1.argmax(1)).double().mean()),
                    cos_w1_w2=torch.nn.functional.cosine_similarity(w1, w2, dim=1).tolist())
    ana = {r: analyse(models[r], feats[r], data, arch, seed) for r in RUNS}
    ana['wb'] = dict(wnorm=w2.norm(dim=1).tolist())
    res = dict(seed=seed, select=select, rows=rows, implicit_la=implicit, analysis=ana, env=env_info(seed=seed, command=' '.join(sys.argv)))
    write_json(out / f'post-s{seed}.json', res)
    return res


def table(out, seeds):
    posts = [json.loads((out / f'post-s{s}.json').read_text()) for s in seeds if (out / f'post-s{s}.json').is_file()]
    if not posts: return None
    names = list(posts[0]['rows']); keys = ('many', 'medium', 'few', 'all')
    def ms(v):
        if any(x is None for x in v): return '—'   # an empty group (no class in it)
        return f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}" if len(v) > 1 else f"{100 * v[0]:.1f}"
    rec0 = json.loads((out / 'runs' / f"ce-s{posts[0]['seed']}" / 'record.json').read_text())
    lines = [f"{rec0['data'].get('dataset', 'data')}-LT (IF {rec0['data'].get('imb_factor', '?')}), {rec0['config']['arch'] or 'default model'}, {rec0['epochs']} epochs, "
             f"test accuracy (%) of the {dict(last='last', best='best-on-validation')[posts[0].get('select', 'best')]} epoch, seeds {[p['seed'] for p in posts]} (mean ± std), Many > 1000 / Few < 200", '',
             '| method | Many | Medium | Few | All | τ / stage 2 chosen |', '|---|---:|---:|---:|---:|---:|']
    summ = {}
    for n in names:
        vals = {k: [p['rows'][n]['test'][k] for p in posts] for k in keys}
        taus = [p['rows'][n]['tau'] for p in posts if 'tau' in p['rows'][n]]
        summ[n] = dict(**{k: dict(mean=float(np.mean(v)), std=float(np.std(v)), values=v) if None not in v else None for k, v in vals.items()}, tau=taus)
        chosen = [f"wd2 {p['rows'][n]['stage2']['wd2']:g}, r {p['rows'][n]['stage2']['r']:g}" for p in posts if 'stage2' in p['rows'][n]]
        lines.append(f"| {n} | " + ' | '.join(ms(vals[k]) for k in keys) + f" | {'; '.join([f'{t:g}' for t in taus] + chosen)} |")
    write_json(out / 'summary.json', dict(seeds=[p['seed'] for p in posts], rows=summ))
    (out / 'table.md').write_text('\n'.join(lines) + '\n')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0]); p.add_argument('--runs', nargs='+', default=list(RUNS), choices=list(RUNS))
    p.add_argument('--epochs', type=int, default=100); p.add_argument('--dataset', default='fashion-mnist')
    p.add_argument('--imb_factor', type=float, default=100)
    p.add_argument('--out', default=str(ROOT / 'results' / 'why-wb-fmnist-lt'))
    p.add_argument('--worker', default='0/1', help='i/n: train every n-th job starting at i (run n workers side by side)')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: 1 with several workers, else all)')
    p.add_argument('--post', action='store_true', help='evaluate and analyse finished seeds, write the table')
    p.add_argument('--select', default='last', choices=list(WEIGHTS), help="which epoch's weights --post reads: the last (the runner's rule) or the best on validation")
    a = p.parse_args(argv)
    if len(set(a.seeds)) != len(a.seeds): p.error(f'--seeds {a.seeds} has duplicates')
    if a.epochs < 1: p.error(f'--epochs {a.epochs} must be >= 1')
    try: wi, wn = map(int, a.worker.split('/')); assert 0 <= wi < wn
    except Exception: p.error(f"--worker {a.worker!r} must be i/n with 0 <= i < n")
    torch.set_num_threads(a.threads or (1 if wn > 1 else torch.get_num_threads()))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    data = lt_dataset(a.dataset, imb_factor=a.imb_factor)
    if a.post:
        for s in a.seeds: post(s, out, data, a.select)
        t = table(out, a.seeds); print(t or 'no finished seed')
        return
    jobs = [(r, s) for s in a.seeds for r in a.runs][wi::wn]
    for r, s in jobs: train_run(r, s, a.epochs, out, data)


if __name__ == '__main__':
    main()
