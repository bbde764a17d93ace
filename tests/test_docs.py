"""The docs site as a reader sees it: titles, reading order, nbdev's processing of every notebook, and every page's figures."""
import base64, importlib.util, json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted((ROOT / 'nbs').rglob('*.ipynb'))
spec = importlib.util.spec_from_file_location('docs_preview', ROOT / 'scripts' / 'docs_preview.py')
dp = importlib.util.module_from_spec(spec); spec.loader.exec_module(dp)


def test_every_notebook_has_a_title_and_a_description():
    "The first cell of every notebook is '# Title' and '> description': nbdev turns them into the page's title and description."
    bad = []
    for p in NBS:
        c = json.loads(p.read_text())['cells'][0]; s = ''.join(c['source']).splitlines()
        if c['cell_type'] != 'markdown' or not s or not re.match(r'# \S', s[0]) or not any(re.match(r'> \S', l) for l in s[1:3]):
            bad.append(str(p.relative_to(ROOT)))
    assert not bad, f'notebooks without "# Title" + "> description" in their first cell: {bad}'


def test_tutorials_are_numbered_in_reading_order():
    "The sidebar sorts by file name: every tutorial starts with its place in the reading order."
    names = [p.name for p in NBS if p.parent.name == 'tutorials']
    nums = [n[:2] for n in names]
    assert all(re.match(r'\d\d_', n) for n in names), names
    assert len(set(nums)) == len(nums), names


def _nb(cells): return dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)
def _raw(s): return dict(cell_type='raw', source=s, metadata={})
def _md(s): return dict(cell_type='markdown', source=s, metadata={})
def _code(s, outputs): return dict(cell_type='code', source=s, outputs=outputs, metadata={}, execution_count=None)


def test_the_page_check_finds_what_a_reader_would_see(tmp_path):
    "No title, no description, a figure that did not render, an error output, a missing image and a dead link are each reported."
    png = base64.b64encode(b'\x89PNG\r\n\x1a\n' + b'\0' * 200).decode()
    proc = tmp_path / 'proc'; proc.mkdir()
    good = _nb([_raw('---\ntitle: A page\ndescription: what it says\n---\n'), _md('text [next](bad.ipynb)'),
                _code('plot()', [dict(output_type='display_data', data={'image/png': png}, metadata={})])])
    (proc / 'good.ipynb').write_text(json.dumps(good))
    (proc / 'bad.ipynb').write_text(json.dumps(_nb([_md('no front matter ![fig](missing.png) [x](nowhere.ipynb)'),
        _code('plot()', [dict(output_type='display_data', data={'text/plain': '<Figure size 640x480 with 1 Axes>'}, metadata={})]),
        _code('1/0', [dict(output_type='error', ename='ZeroDivisionError', evalue='division by zero', traceback=[])]),
        _code('show()', [dict(output_type='display_data', data={'image/png': 'bm90IGEgcG5n'}, metadata={})])])))
    dp.ROOT = tmp_path; (tmp_path / 'nbs').mkdir()
    (tmp_path / 'nbs' / 'bad.ipynb').write_text('{}')
    try: report = dp.build(proc, tmp_path / 'html')
    finally: dp.ROOT = ROOT
    assert report['good.html'] == []
    bad = ' | '.join(report['bad.html'])
    for msg in ('no title', 'no description', 'image missing.png not found', 'link to nowhere.ipynb, which does not exist',
                'a figure has no image', 'error output ZeroDivisionError', 'a image/png figure does not decode'):
        assert msg in bad, (msg, bad)
    page = (tmp_path / 'html' / 'good.html').read_text()
    assert '<title>A page</title>' in page and 'href="bad.html"' in page and f'base64,{png}' in page


def test_docs_build_every_page_renders():
    "nbdev's processing of every notebook succeeds (documentation cells run) and every page has a title, a description and its figures."
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'docs_preview.py')], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f'{len(NBS)} pages' in r.stdout and '0 with problems' in r.stdout, r.stdout
