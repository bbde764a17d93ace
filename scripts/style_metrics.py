#!/usr/bin/env python
"""House-style figures of the library (issue 20's table): exported notebook cells and ltr_nb/*.py.

    python scripts/style_metrics.py            # the figures, with the targets beside them
    python scripts/style_metrics.py --check    # exit 1 when a target is missed
    python scripts/style_metrics.py --json     # the figures as JSON (to compare before/after)
"""
import argparse, ast, io, json, statistics, sys, tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = dict(median_cell=12, long_lines_pct=3.0, semicolon_pct=1.0, undocumented=0, long_functions=0, runner_lines=350)

def exported_cells() -> list[str]:
    "The source of every `#| export` cell of the notebooks in nbs/ (not the tutorials)."
    cells = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            s = ''.join(c['source'])
            if c['cell_type'] == 'code' and s.lstrip().startswith(('#| export', '#|export')): cells.append(s)
    return cells

def _semicolon_lines(src:str) -> set[int]:
    "Line numbers where `;` joins statements (strings and comments excluded)."
    try: return {t.start[0] for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type == tokenize.OP and t.string == ';'}
    except (tokenize.TokenError, IndentationError): return set()

def _params(f) -> list[str]:
    a = f.args
    return [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg not in ('self', 'cls')] + \
           [p.arg for p in (a.vararg, a.kwarg) if p is not None]

def _documented(f, lines:list[str]) -> bool:
    "docments: every parameter's line in the signature carries a `#` comment."
    sig_end = f.body[0].lineno - 1
    sig = lines[f.lineno - 1:sig_end]
    a = f.args
    for p in a.posonlyargs + a.args + a.kwonlyargs:
        if p.arg in ('self', 'cls'): continue
        if '#' not in lines[p.lineno - 1]: return False
    return len(sig) > 0

def module_figures(path:Path) -> dict:
    src = path.read_text(); lines = src.splitlines(); tree = ast.parse(src)
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    public = [f for f in tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and not f.name.startswith('_')]
    multi = [f for f in public if len(_params(f)) >= 2]
    return dict(lines=len(lines), long=[(path.name, f.name, f.end_lineno - f.lineno + 1) for f in funcs if f.end_lineno - f.lineno + 1 > 40],
                multi=len(multi), documented=sum(_documented(f, lines) for f in multi),
                undocumented=[f"{path.stem}.{f.name}" for f in multi if not _documented(f, lines)])

def figures() -> dict:
    cells = exported_cells()
    sizes = [len([l for l in c.splitlines()[1:] if l.strip()]) for c in cells]   # non-blank lines below the directive
    defs = []
    for c in cells:
        try: body = ast.parse('\n'.join(c.splitlines()[1:])).body
        except SyntaxError: continue
        defs.append(sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in body))
    code = [l for c in cells for l in c.splitlines()[1:] if l.strip()]
    semi = sum(len(_semicolon_lines('\n'.join(c.splitlines()[1:]))) for c in cells)
    mods = {p.stem: module_figures(p) for p in sorted((ROOT/'ltr_nb').glob('*.py')) if not p.name.startswith('_')}
    multi = sum(m['multi'] for m in mods.values()); doc = sum(m['documented'] for m in mods.values())
    long_f = [x for m in mods.values() for x in m['long']]
    return dict(exported_cells=len(cells), median_cell=statistics.median(sizes), max_cell=max(sizes),
                defs_per_cell=round(statistics.mean(defs), 2), cells_3plus_defs=sum(d >= 3 for d in defs),
                long_lines_pct=round(100 * sum(len(l) > 120 for l in code) / len(code), 1), max_line=max(map(len, code)),
                semicolon_pct=round(100 * semi / len(code), 1), documented=f"{doc} of {multi}", undocumented=multi - doc,
                long_functions=len(long_f), longest_functions=sorted(long_f, key=lambda x: -x[2])[:8],
                largest_module=max(((k, m['lines']) for k, m in mods.items()), key=lambda x: x[1]), runner_lines=mods['runner']['lines'])

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--check', action='store_true'); p.add_argument('--json', action='store_true')
    a = p.parse_args(argv); f = figures()
    if a.json: print(json.dumps(f, indent=1)); return 0
    rows = [('median exported cell (lines)', f['median_cell'], f"<= {TARGETS['median_cell']}", f['median_cell'] <= TARGETS['median_cell']),
            ('largest exported cell', f['max_cell'], '', None),
            ('definitions per exported cell', f['defs_per_cell'], '~1', None),
            ('exported cells with >= 3 definitions', f['cells_3plus_defs'], '', None),
            ('lines > 120 chars (%)', f['long_lines_pct'], f"<= {TARGETS['long_lines_pct']}", f['long_lines_pct'] <= TARGETS['long_lines_pct']),
            ("lines joining statements with ';' (%)", f['semicolon_pct'], f"<= {TARGETS['semicolon_pct']}", f['semicolon_pct'] <= TARGETS['semicolon_pct']),
            ('public functions (>= 2 params) with docments', f['documented'], 'all', f['undocumented'] == 0),
            ('functions over 40 lines', f['long_functions'], '0', f['long_functions'] == 0),
            ('largest module', f"{f['largest_module'][0]} ({f['largest_module'][1]} lines)", '', None),
            ('runner.py lines', f['runner_lines'], f"< {TARGETS['runner_lines']}", f['runner_lines'] < TARGETS['runner_lines'])]
    print('| measure | now | target | met |\n|---|---|---|---|')
    for name, v, t, ok in rows: print(f"| {name} | {v} | {t} | {'' if ok is None else 'yes' if ok else 'no'} |")
    print('\nlongest functions:', ', '.join(f"{m}:{n} ({k})" for m, n, k in f['longest_functions']))
    missed = [r[0] for r in rows if r[3] is False]
    if a.check and missed: print(f"\nmissed: {'; '.join(missed)}", file=sys.stderr); return 1
    return 0

if __name__ == '__main__': sys.exit(main())
