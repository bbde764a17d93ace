"""Compare the digits-lt folders that scripts/determinism.sh wrote: per setting, which rows repeat the default setting bit for bit
(training and heads), and what each setting costs. Usage: python scripts/compare_runs.py OUT"""
import json, sys
from pathlib import Path
from ltr_nb.verify import compare_runs

out = Path(sys.argv[1]); runs = lambda d: json.loads((out / d / 'results.json').read_text())['runs']
secs = dict(line.split() for line in (out / 'seconds.txt').read_text().splitlines())
ref = runs('default'); lines = ['| setting | seconds | rows identical to default (whole run) | rows identical (heads on the same weights) |', '|---|---:|---|---|']
for d in sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith('heads-')):
    if d == 'default': lines.append(f"| default | {secs.get(d, '?')} | – | – |"); continue
    same = lambda f: [n for n, r in compare_runs(ref, runs(f), True).items() if r['verdict'] == 'identical']
    heads = same(f'heads-{d}') if (out / f'heads-{d}' / 'results.json').is_file() else []
    lines.append(f"| {d} | {secs.get(d, '?')} | {len(same(d))} of {len(ref)}: {', '.join(same(d))} | {len(heads)} of {len(ref)} |")
text = '\n'.join(lines); print(text); (out / 'summary.md').write_text(text + '\n')
