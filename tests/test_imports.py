"Importing ltr_nb changes nothing in fastai: every fastai class and function is the same object before and after."
import subprocess, sys, textwrap

SNAPSHOT = textwrap.dedent('''
    import importlib, inspect, pkgutil, sys
    import torch
    try: import torchvision
    except RuntimeError:      # a CPU torch with the CUDA torchvision wheel: the schemas ltr_nb's own guard defines (nbs/00_core)
        for m in [m for m in sys.modules if m.startswith('torchvision')]: del sys.modules[m]
        for n in ('nms', 'qnms'): torch.library.define(f'torchvision::{n}', '(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
        import torchvision
    import fastai.vision.all, fastcore.all, fastai.learner, fastai.callback.all, fastai.data.all, fastai.metrics, fastai.optimizer
    import fastai.distributed      # every fastai module ltr_nb imports, loaded first
    def snap():
        s = {}
        for mn, m in list(sys.modules.items()):
            if not mn.split('.')[0] in ('fastai', 'fastcore') or m is None: continue
            for n, v in list(vars(m).items()):
                s[(mn, n)] = id(v)
                if inspect.isclass(v) and v.__module__ == mn:
                    for a, x in list(vars(v).items()): s[(mn, n, a)] = id(x)
        return s
    keep = []                                          # hold the objects so no id is reused
    before = snap(); keep.append({k: None for k in before})
    import ltr_nb
    mods = [m.name for m in pkgutil.iter_modules(ltr_nb.__path__) if not m.name.startswith('_')]
    for m in mods: importlib.import_module(f'ltr_nb.{m}')
    after = snap()
    changed = sorted(str(k) for k, v in before.items() if after.get(k) != v)
    added = sorted(str(k) for k in after if k not in before and len(k) == 3 and (k[0], k[1]) in before)
    print(len(mods), 'modules')
    assert not changed and not added, f"fastai changed by importing ltr_nb: changed {changed[:10]}, added {added[:10]}"
''')

def test_import_leaves_fastai_alone():
    r = subprocess.run([sys.executable, '-c', SNAPSHOT], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert int(r.stdout.split()[0]) >= 15          # every module was imported

def test_hooks_only_inside_the_context():
    from fastai.distributed import DistributedTrainer, DistributedDL
    from ltr_nb.distributed import fastai_hooks, _wrap_dl, _broadcast
    orig = DistributedTrainer.__dict__['_wrap_dl'], DistributedDL.__dict__['_broadcast']
    assert orig[0] is not _wrap_dl and orig[1] is not _broadcast
    try:
        with fastai_hooks():
            assert DistributedTrainer._wrap_dl is _wrap_dl and DistributedDL._broadcast is _broadcast
            raise KeyError('a fit that fails')
    except KeyError: pass
    assert (DistributedTrainer.__dict__['_wrap_dl'], DistributedDL.__dict__['_broadcast']) == orig


def test_style_report_runs():
    "scripts/style_metrics.py prints its report of the house-style figures (a report to read, not a gate: issue 34)."
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / 'scripts' / 'style_metrics.py')], capture_output=True, text=True)
    assert r.returncode == 0 and '| measure | now | target | met |' in r.stdout, r.stdout + r.stderr


def _imports(tree, pkg='ltr_nb'):
    "The ltr_nb modules a module's source imports, at its top or inside a function."
    import ast
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module:
            m = n.module if n.level == 0 else f'{pkg}.{n.module}'
            if m.startswith(f'{pkg}.'): out.add(m.split('.')[1])
        elif isinstance(n, ast.Import):
            out |= {a.name.split('.')[1] for a in n.names if a.name.startswith(f'{pkg}.')}
    return out


def test_no_import_circle():
    "No module of the package imports, even lazily inside a function, a module that imports it back (issue 34)."
    import ast
    from pathlib import Path
    pkg = Path(__file__).resolve().parents[1] / 'ltr_nb'
    graph = {f.stem: _imports(ast.parse(f.read_text())) - {f.stem} for f in pkg.glob('*.py') if not f.stem.startswith('_')}
    def reach(a, seen):
        for b in graph.get(a, ()):
            if b not in seen: seen.add(b); reach(b, seen)
        return seen
    circles = sorted(f'{a} -> {b} -> ... -> {a}' for a in graph for b in graph[a] if a in reach(b, {b}))
    assert not circles, circles


def _notebook_imports():
    "{notebook: (the module it exports, the ltr_nb modules any of its code cells imports)} for nbs/[0-9]*.ipynb."
    import ast, json, re
    from pathlib import Path
    out = {}
    for f in sorted((Path(__file__).resolve().parents[1] / 'nbs').glob('[0-9]*.ipynb')):
        cells = [''.join(c['source']) for c in json.loads(f.read_text())['cells'] if c['cell_type'] == 'code']
        mod = next((m.group(1) for s in cells for m in [re.search(r'^#\|\s*default_exp\s+(\w+)', s, re.M)] if m), None)
        code = '\n'.join('\n'.join(l for l in s.splitlines() if not l.lstrip().startswith(('#|', '%', '!'))) for s in cells)
        out[f.name] = (mod, _imports(ast.parse(code)) - {mod})
    return out


def test_notebooks_import_only_earlier_ones():
    """Reading order is dependency order (issue 34): no notebook — its exported code or its tests — imports a module
    that a later notebook defines, so the sidebar never shows code that uses what is explained further on."""
    nbs = _notebook_imports()
    home = {mod: nb for nb, (mod, _) in nbs.items() if mod}
    assert len(home) >= 25 and 'framework' in home and 'methods' in home
    later = sorted(f'{nb} imports ltr_nb.{m} ({home[m]})' for nb, (_, used) in nbs.items() for m in used
                   if m in home and home[m] > nb)
    assert not later, later


def test_notebook_order_check_can_fail():
    "The order check sees an upward import: the runner's notebook imports the report's, which comes before it."
    nbs = _notebook_imports()
    assert 'report' in nbs['09d_runner.ipynb'][1] and '09c_report.ipynb' < '09d_runner.ipynb'
    assert 'methods' in nbs['09_experiments.ipynb'][1]


DOCUMENTED_IMPORTS = [   # the import lines the README, the tutorials and users' scripts use (issue 34, item 7)
    'from ltr_nb.heads import lws, crt, ncm, tau_norm, tau_sweep',
    'from ltr_nb.heads import cache_features, evaluate_model',     # moved to ltr_nb.evaluate; still importable here
    'from ltr_nb.wb import MaxNorm, CBLoss, wb_stage2, WBConfig',
    'from ltr_nb.methods import fit_method, weight_balancing, train_onestage, METHODS',
    'from ltr_nb.evaluate import report, cache_features, feats_report, evaluate_model',
    'from ltr_nb.onestage import tune_la, with_etf, onestage_learner',
    'from ltr_nb.logit_adjust import tune_la, logit_adjust, class_priors, LogitAdjustedLoss',
    'from ltr_nb.losses import FocalLoss, LDAMLoss, DRW',
    'from ltr_nb.framework import Method, Options, register_method, register_trainer, fit_method',
    'from ltr_nb.data import lt_dataset',
    'from ltr_nb.listfile import write_list_files',
    'from ltr_nb.train import TrainConfig, recipe, train_joint',
]


def test_documented_imports():
    "Every documented import line imports, in a fresh interpreter, and importing ltr_nb.methods registers every method."
    code = '\n'.join(DOCUMENTED_IMPORTS) + '\nimport ltr_nb.methods as m\nprint(sorted(m.METHODS))'
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {'joint', 'crt', 'la', 'wb', 'onestage_la', 'la_loss', 'focal', 'ldam_drw'} <= set(eval(r.stdout))
