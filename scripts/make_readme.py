#!/usr/bin/env python3
"""Render nbs/index.ipynb (with its saved outputs) to README.md, as nbdev_readme does where Quarto is installed.

`--check` exits 1 when README.md is out of date. Honours `#| hide` (cell dropped) and `#| echo: false` (output only).
Relative links to notebooks (`tutorials/x.ipynb`, `03_loaders.ipynb#how-fast`) are made relative to the repository
root (`nbs/...`), where README.md lives; the docs site resolves them from nbs/ itself.
"""
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent


def directives(src):
    return {l[3:].strip().split(':')[0]: l[3:].strip() for l in src.splitlines() if l.startswith('#| ')}


def render(nb):
    out, cells = [], nb['cells']
    for c in cells:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            lines = src.splitlines()
            if lines and lines[0].startswith('# ') and not out:  # title + '> subtitle' as nbdev renders them
                out.append(lines[0])
                rest = lines[1:]
                if rest and rest[0].startswith('> '): out.append('\n' + rest[0]); rest = rest[1:]
                if rest: out.append('\n'.join(rest))
            else: out.append(src)
            continue
        d = directives(src)
        if 'hide' in d or d.get('default_exp'): continue
        code = '\n'.join(l for l in src.splitlines() if not l.startswith('#| ')).strip()
        if code and d.get('echo') != 'echo: false': out.append(f'``` python\n{code}\n```')
        for o in c.get('outputs', []):
            data = o.get('data', {})
            if 'text/markdown' in data: out.append(''.join(data['text/markdown']))
            elif o.get('output_type') == 'stream': out.append('    ' + ''.join(o['text']).rstrip().replace('\n', '\n    '))
            elif 'text/plain' in data: out.append('    ' + ''.join(data['text/plain']).rstrip().replace('\n', '\n    '))
    text = '\n\n'.join(s.strip('\n') for s in out if s.strip()) + '\n'
    return re.sub(r'\]\((?![a-z]+:|/|#)([^)\s]+\.ipynb(?:#[^)\s]*)?)\)', r'](nbs/\1)', text)


if __name__ == '__main__':
    text = render(json.loads((root / 'nbs' / 'index.ipynb').read_text()))
    readme = root / 'README.md'
    if '--check' in sys.argv:
        if readme.read_text() != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run scripts/make_readme.py and commit')
    else: readme.write_text(text)
