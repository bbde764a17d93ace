#!/usr/bin/env python3
"""The docs site as a reader sees it, without Quarto: nbdev's own notebook processing, then a plain HTML page per notebook.

Quarto (which the GitHub workflow uses to build the real site) cannot run on this machine. This script runs the same
first step, `nbdev_proc_nbs` (show_doc, hidden cells, echo: false, the title and description front matter; it fails on
a notebook whose documentation cells cannot run), then renders every processed notebook to `_docs_preview/<path>.html`
(markdown via markdown-it-py, committed outputs with their images embedded) with a sidebar in the site's order
(file names), and checks every page: a title, a description, no error output, every figure present (embedded image
data that decodes as a PNG / JPEG / SVG, or a linked file that exists). Exit status 1 lists the pages that fail.

    .venv/bin/python scripts/docs_preview.py                                # build and check (tests/test_docs.py runs this)
    .venv/bin/python scripts/docs_preview.py --screenshots results/docs     # also screenshots with headless Chromium
                                                                            # (apt-get install chromium)
"""
import argparse, base64, html, json, re, shutil, subprocess, sys
from pathlib import Path
import yaml
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
MD = MarkdownIt('commonmark', {'html': True}).enable('table')
CSS = """body{font-family:system-ui,sans-serif;margin:0;display:flex;color:#222}
nav{width:250px;min-width:250px;background:#f6f7f9;border-right:1px solid #ddd;padding:16px;font-size:13px;height:100vh;overflow:auto;position:sticky;top:0}
nav a{display:block;color:#245;text-decoration:none;padding:3px 0}nav a.here{font-weight:bold}
main{max-width:960px;padding:16px 40px;line-height:1.5}h1{margin-bottom:4px}.description{color:#555;font-size:1.1em;margin-top:0}
pre{background:#f5f5f5;padding:8px;overflow:auto;font-size:12px}.output pre{background:#fff;border-left:3px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}"""


def front_matter(nb) -> dict:
    "The YAML front matter nbdev's processing puts in the first raw cell (title, description)."
    for c in nb['cells']:
        if c['cell_type'] == 'raw':
            s = ''.join(c['source']).strip()
            if s.startswith('---'): return yaml.safe_load(s.strip('-\n')) or {}
        if c['cell_type'] != 'raw': break
    return {}


def _img_ok(data: str, mime: str) -> bool:
    try: b = base64.b64decode(data)
    except Exception: return False
    return len(b) > 100 and (b[:8] == b'\x89PNG\r\n\x1a\n' if mime == 'image/png' else b[:2] == b'\xff\xd8' if mime == 'image/jpeg' else True)


def render(nb, src_dir: Path) -> tuple[str, list]:
    "HTML body of a processed notebook and the problems found in it."
    out, problems = [], []
    for i, c in enumerate(nb['cells']):
        s = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            out.append(re.sub(r'href="([^":]+)\.ipynb', r'href="\1.html', MD.render(s)))
            for m in re.finditer(r'(?<!!)\[[^\]]*\]\(([^)\s:]+\.ipynb)(#[^)\s]*)?\)', s):
                if not (src_dir / m.group(1)).exists(): problems.append(f'cell {i}: link to {m.group(1)}, which does not exist')
            for m in re.finditer(r'!\[[^\]]*\]\(([^)\s]+)', s):
                u = m.group(1)
                if not u.startswith(('http:', 'https:', 'data:')) and not (src_dir / u).exists(): problems.append(f'cell {i}: image {u} not found')
        elif c['cell_type'] == 'code':
            lines = s.splitlines(); dirs = {}
            while lines and lines[0].startswith('#|'):
                k, _, v = lines.pop(0)[2:].partition(':'); dirs[k.strip()] = v.strip().lower()
            if dirs.get('include') == 'false' or 'hide' in dirs: continue        # as Quarto: include: false hides code and output
            code = '\n'.join(lines)
            if code.strip() and dirs.get('echo') != 'false': out.append(f'<pre><code>{html.escape(code)}</code></pre>')
            if dirs.get('output') == 'false': continue
            for o in c.get('outputs', []):
                if o['output_type'] == 'error': problems.append(f"cell {i}: error output {o.get('ename')}: {o.get('evalue')}"); continue
                if o['output_type'] == 'stream':
                    if o.get('name') == 'stderr': continue
                    out.append(f"<div class=output><pre>{html.escape(''.join(o['text']))}</pre></div>"); continue
                d = o.get('data', {})
                for mime in ('image/png', 'image/jpeg'):
                    if mime in d:
                        v = ''.join(d[mime]) if isinstance(d[mime], list) else d[mime]
                        if not _img_ok(v.strip(), mime): problems.append(f'cell {i}: a {mime} figure does not decode')
                        out.append(f'<div class=output><img src="data:{mime};base64,{v.strip()}"></div>'); break
                else:
                    if 'image/svg+xml' in d: out.append(f"<div class=output>{''.join(d['image/svg+xml'])}</div>")
                    elif 'text/html' in d: out.append(f"<div class=output>{''.join(d['text/html'])}</div>")
                    elif 'text/markdown' in d: out.append(f"<div class=output>{MD.render(''.join(d['text/markdown']))}</div>")
                    elif 'text/plain' in d:
                        t = ''.join(d['text/plain'])
                        if re.fullmatch(r'<Figure size .*>', t.strip()): problems.append(f'cell {i}: a figure has no image (only {t.strip()!r})')
                        out.append(f'<div class=output><pre>{html.escape(t)}</pre></div>')
    return '\n'.join(out), problems


def build(proc: Path, dest: Path) -> dict:
    "Render every processed notebook under `proc` into `dest`; returns {page: problems}."
    pages = sorted(p.relative_to(proc) for p in proc.rglob('*.ipynb'))
    pages.sort(key=lambda p: (p.name != 'index.ipynb' or len(p.parts) > 1, len(p.parts) > 1, str(p)))   # landing page, modules, tutorials
    metas = {p: front_matter(json.loads((proc / p).read_text())) for p in pages}
    report = {}
    for p in pages:
        nb = json.loads((proc / p).read_text()); fm = metas[p]
        body, problems = render(nb, (ROOT / 'nbs' / p).parent)
        if not fm.get('title'): problems.insert(0, 'no title (the first cell must be "# Title")')
        if not fm.get('description'): problems.insert(0, 'no description (a "> description" line under the title)')
        up = '../' * (len(p.parts) - 1)
        nav = ''.join(f'<a href="{up}{q.with_suffix(".html")}"{" class=here" if q == p else ""}>{html.escape(metas[q].get("title", str(q)))}</a>' for q in pages)
        f = dest / p.with_suffix('.html'); f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(fm.get("title", ""))}</title><style>{CSS}</style></head>'
                     f'<body><nav><b>ltr_nb</b>{nav}</nav><main><h1>{html.escape(fm.get("title", ""))}</h1>'
                     f'<p class=description>{html.escape(fm.get("description", ""))}</p>{body}</main></body></html>')
        report[str(p.with_suffix('.html'))] = problems
    return report


def screenshot(page: Path, png: Path, height: int = 2200):
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe is None: sys.exit('docs_preview: --screenshots needs Chromium (apt-get install chromium)')
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', f'--window-size=1400,{height}',
                    f'--screenshot={png}', page.resolve().as_uri()], check=True, capture_output=True, timeout=120)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dest', default=str(ROOT / '_docs_preview'))
    p.add_argument('--screenshots', default=None, help='folder for PNG screenshots of the landing page and one tutorial')
    p.add_argument('--no_proc', action='store_true', help='reuse _proc/ from an earlier run')
    a = p.parse_args(argv)
    if not a.no_proc:
        shutil.rmtree(ROOT / '_proc', ignore_errors=True)      # nbdev keeps pages of renamed notebooks otherwise
        r = subprocess.run([str(Path(sys.executable).parent / 'nbdev_proc_nbs'), '--n_workers', '1'], cwd=ROOT, capture_output=True, text=True)
        if r.returncode: print(r.stdout[-4000:] + r.stderr[-4000:]); sys.exit('docs_preview: nbdev_proc_nbs failed (above): a notebook\'s documentation cells cannot run')
    dest = Path(a.dest); shutil.rmtree(dest, ignore_errors=True)
    report = build(ROOT / '_proc', dest)
    bad = {k: v for k, v in report.items() if v}
    print(f"docs_preview: {len(report)} pages in {dest}, {len(bad)} with problems")
    for k, v in bad.items(): print(f"  {k}: " + '; '.join(v))
    if a.screenshots:
        for page, name in (('index.html', 'landing-page.png'), ('tutorials/05_why_weight_balancing.html', 'tutorial-why-weight-balancing.png')):
            screenshot(dest / page, Path(a.screenshots) / name)
        print(f"docs_preview: screenshots in {a.screenshots}")
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
