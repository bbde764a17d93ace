"""`ltr_nb --verify`: a committed folder re-run row by row; a tampered number is caught; the checked folder is never written."""
import hashlib, json, os, shutil, signal, subprocess, sysconfig
from pathlib import Path
import pytest

LTR = str(Path(sysconfig.get_path('scripts')) / 'ltr_nb')
DIGITS = Path(__file__).parent.parent / 'results' / 'digits-lt'


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.rglob('*')) if p.is_file()}


@pytest.fixture
def copy(tmp_path):
    d = tmp_path / 'digits-lt'; shutil.copytree(DIGITS, d, ignore=shutil.ignore_patterns('.ltr_nb.lock')); return d


def test_verify_passes_and_writes_nothing(copy):
    before = _digest(copy)
    r = subprocess.run([LTR, '--verify', str(copy), '--only', 'joint-ib,crt'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert '| joint-ib |' in r.stdout and '2 of 2 rows repeat' in r.stdout
    assert _digest(copy) == before
    rows = 'joint-ib,crt,lws,wb-paper,onestage-la'         # every kind of post step: heads, tuned WB stage 2, LA (the script verifies all rows)
    r = subprocess.run([LTR, '--verify', str(copy), '--committed_weights', '--only', rows], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "on the folder's trained weights" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    assert '5 of 5 rows repeat' in r.stdout and _digest(copy) == before


def test_tampered_number_is_caught(copy):
    rec = json.loads((copy / 'results.json').read_text())
    for r in rec['runs']['joint-ib']: r['test']['all'] -= 0.3             # committed numbers changed by hand (caught on any machine)
    (copy / 'results.json').write_text(json.dumps(rec))
    r = subprocess.run([LTR, '--verify', str(copy), '--only', 'joint-ib'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 4, r.stdout[-3000:] + r.stderr[-3000:]
    assert '| joint-ib |' in r.stdout and 'differs' in r.stdout and 'does not repeat' in r.stderr


@pytest.mark.parametrize('sig,code,why', [(signal.SIGINT, 130, 'interrupted'), (signal.SIGTERM, 143, 'terminated (SIGTERM)')])
def test_verify_stopped_says_so(copy, tmp_path, sig, code, why):
    "Ctrl-C or SIGTERM during --verify: no 'resume' (nothing is kept), the folder unchanged, no re-run left behind."
    before, tmp = _digest(copy), tmp_path / 'tmp'
    tmp.mkdir()
    p = subprocess.Popen([LTR, '--verify', str(copy), '--only', 'joint-ib'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, 'TMPDIR': str(tmp)})
    for line in p.stdout:
        if line.startswith('suite '): p.send_signal(sig); break       # the re-run has started
    so, se = p.communicate(timeout=300)
    assert p.returncode == code and f'{why}; verification stopped' in se, (p.returncode, se[-3000:])
    assert 'Traceback' not in se and 'resume' not in se, se[-3000:]
    assert _digest(copy) == before and not list(tmp.glob('ltr_nb-verify-*'))


def test_verify_refuses_what_is_not_a_results_folder(tmp_path):
    r = subprocess.run([LTR, '--verify', str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'is not a results folder ltr_nb wrote' in r.stderr, r.stderr


@pytest.mark.parametrize('link', ['outside', 'loop'])
def test_committed_weights_copies_no_link(copy, tmp_path, link):
    "A symbolic link in runs/ (to a folder outside, or back into runs/) is refused, named, and nothing is copied through it."
    far = tmp_path / 'far'; (far / 'models').mkdir(parents=True); (far / 'models' / 'final.pth').write_bytes(b'\0' * 1000)
    (copy / 'runs' / 'zz').symlink_to(far if link == 'outside' else Path('.'), target_is_directory=True)
    before, tmp = _digest(copy), tmp_path / 'tmp'
    tmp.mkdir()
    r = subprocess.run([LTR, '--verify', str(copy), '--committed_weights', '--only', 'joint-ib'], capture_output=True,
                       text=True, timeout=300, env={**os.environ, 'TMPDIR': str(tmp)})
    assert r.returncode == 2 and "runs/zz' is a symbolic link" in r.stderr and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert _digest(copy) == before and not list(tmp.glob('ltr_nb-verify-*'))


def test_edited_per_seed_file_is_caught(copy):
    "A per-seed result edited by hand (results.json untouched) is named, and the verification fails (exit 4)."
    f = copy / 'results' / 'joint-ib' / 's0.json'; r = json.loads(f.read_text()); r['test']['all'] = 0.65
    f.write_text(json.dumps(r))
    before = _digest(copy)
    v = subprocess.run([LTR, '--verify', str(copy), '--only', 'joint-ib'], capture_output=True, text=True, timeout=900)
    assert v.returncode == 4 and 'results/joint-ib/s0.json is not the result results.json holds' in v.stdout, v.stdout[-3000:]
    assert _digest(copy) == before


def test_committed_weights_speak_of_the_committed_file(copy, tmp_path):
    """A damaged committed weight file under --committed_weights is named by its committed path, with the advice to restore
    it, not by the temporary copy's path with advice to delete it or start again with --fresh."""
    for f in (copy / 'runs').glob('*/models/final.pth'): f.write_bytes(f.read_bytes()[:100])
    tmp = tmp_path / 'tmp'; tmp.mkdir()
    r = subprocess.run([LTR, '--verify', str(copy), '--committed_weights', '--only', 'joint-ib'], capture_output=True,
                       text=True, timeout=300, env={**os.environ, 'TMPDIR': str(tmp)})
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert f"{str(copy / 'runs')}/" in r.stderr and 'restore it' in r.stderr, r.stderr[-3000:]
    assert str(tmp) not in r.stderr and '--fresh' not in r.stderr and 'delete' not in r.stderr, r.stderr[-3000:]


def test_verify_on_a_full_disk_names_tmpdir(copy, tmp_path):
    "No space for the re-run: the message names TMPDIR (where it is written), not 'run the same command again'."
    tmp = tmp_path / 'small'; tmp.mkdir()
    m = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', str(tmp)], capture_output=True, text=True)
    if m.returncode: pytest.skip(f'cannot mount a small tmpfs here ({m.stderr.strip()[:120]})')
    try:
        r = subprocess.run([LTR, '--verify', str(copy), '--only', 'joint-ib'], capture_output=True, text=True, timeout=300,
                           env={**os.environ, 'TMPDIR': str(tmp)})
    finally: subprocess.run(['umount', str(tmp)])
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert 'no space left' in r.stderr and f"under {str(tmp)!r}" in r.stderr and 'set TMPDIR' in r.stderr, r.stderr[-3000:]
    assert 'run the same command again' not in r.stderr, r.stderr[-3000:]


def test_custom_suite_verified_from_elsewhere(tmp_path):
    "A folder made from a suite file given by a relative path verifies from another directory (and after the file is gone)."
    here, there = tmp_path / 'here', tmp_path / 'there'; here.mkdir(); there.mkdir()
    suite = dict(name='mine', experiments=[dict(name='joint-ib', method='joint', dataset='digits', epochs=2, seeds=[0])])
    (here / 'mine.json').write_text(json.dumps(suite))
    r = subprocess.run([LTR, 'mine.json', '--out', 'o', '--device', 'cpu'], cwd=here, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (here / 'mine.json').unlink()
    v = subprocess.run([LTR, '--verify', str(here / 'o')], cwd=there, capture_output=True, text=True, timeout=300)
    assert v.returncode == 0 and '1 of 1 rows repeat' in v.stdout, v.stdout[-3000:] + v.stderr[-3000:]


@pytest.mark.parametrize('edit,msg', [
    (lambda r: r.update(command='ltr_nb --help'), 'which does not run a suite'),
    (lambda r: r.update(command='ltr_nb --bogus'), 'which does not run a suite'),
    (lambda r: r.update(command=5), 'is not a command line'),
    (lambda r: r.update(runs=[1, 2]), "'runs' must map"),
    (lambda r: r['runs']['crt'][0].update(seed='/../../../outside/v'), 'no integer seed'),
    (lambda r: r.update(command=r['command'].replace('--epochs 30', '--epochs 100000') if '--epochs 30' in r['command']
                        else r['command'] + ' --epochs 100000'), 'otherwise than manifest.json records them')])
def test_edited_results_record_refused(copy, tmp_path, edit, msg):
    """--verify re-runs what produced the folder, or refuses, before training: a results.json whose command, runs or seeds
    were edited is named (exit 2), never run (a --help that exits 0, a 55-hour re-run) nor a traceback."""
    f = copy / 'results.json'; rec = json.loads(f.read_text()); edit(rec); f.write_text(json.dumps(rec))
    before, tmp = _digest(copy), tmp_path / 'tmp'; tmp.mkdir()
    r = subprocess.run([LTR, '--verify', str(copy)], capture_output=True, text=True, timeout=300, env={**os.environ, 'TMPDIR': str(tmp)})
    assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, (r.returncode, r.stdout[-1500:], r.stderr[-3000:])
    assert _digest(copy) == before and not list(tmp.glob('ltr_nb-verify-*'))


def test_verify_refuses_a_link_in_the_folder(copy, tmp_path):
    "A per-seed result or row folder linked from outside is named by --verify, which reads nothing through it."
    far = tmp_path / 'far'; shutil.copytree(copy / 'results' / 'crt', far); shutil.rmtree(copy / 'results' / 'crt')
    (copy / 'results' / 'crt').symlink_to(far)
    r = subprocess.run([LTR, '--verify', str(copy), '--only', 'crt'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "results/crt' is a symbolic link" in r.stderr, r.stderr[-3000:]


@pytest.mark.parametrize('edit,msg', [
    (lambda a: a.update(foo=1), "foo (not one of run_suite's)"), (lambda a: a.update(plots=True), "plots (not one of run_suite's)"),
    (lambda a: a.pop('suite'), 'no suite'), (lambda a: a.update(overrides='x'), "overrides='x'"),
    (lambda a: a.update(options=[1]), 'options=[1]'), (lambda a: a.update(only=['crt']), 'two different jobs')])
def test_edited_args_refused(tmp_path, edit, msg):
    "run_suite's recorded arguments that are not the kinds ltr_nb records, or that disagree with the command, are named."
    out = tmp_path / 'o'
    r = subprocess.run([LTR, '--only', 'joint-ib,crt', '--seeds', '0', '--epochs', '2', '--set', 'head_epochs=2', '--device', 'cpu',
                        '--out', str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    f = out / 'results.json'; rec = json.loads(f.read_text()); edit(rec['args']); f.write_text(json.dumps(rec))
    v = subprocess.run([LTR, '--verify', str(out)], capture_output=True, text=True, timeout=300)
    assert v.returncode == 2 and msg in v.stderr and 'Traceback' not in v.stderr, v.stderr[-3000:]


@pytest.mark.parametrize('how', ['extra-row', 'summary', 'table'])
def test_every_number_the_folder_shows_is_checked(copy, how):
    """A row added by hand (with a resealed per-seed file), a summary in results.json or a row of table.md edited: --verify
    says which row differs (exit 4), not 'every row repeats'."""
    from ltr_nb.folder import sealed
    rec = json.loads((copy / 'results.json').read_text())
    if how == 'extra-row':
        rec['runs']['zz'] = rec['runs']['crt']; rec['summary']['zz'] = rec['summary']['crt']
        (copy / 'results' / 'zz').mkdir(); (copy / 'results' / 'zz' / 's0.json').write_text((copy / 'results' / 'crt' / 's0.json').read_text())
        row = 'zz'
    elif how == 'summary': rec['summary']['crt']['test']['all']['mean'] = 0.99; row = 'crt'
    else:
        t = (copy / 'table.md').read_text().splitlines()
        t = [l if not l.startswith('| crt |') else '|'.join(l.split('|')[:7] + [' 99.0 '] + l.split('|')[8:]) for l in t]
        (copy / 'table.md').write_text('\n'.join(t) + '\n'); row = 'crt'
    (copy / 'results.json').write_text(json.dumps(rec))
    v = subprocess.run([LTR, '--verify', str(copy), '--only', 'crt'], capture_output=True, text=True, timeout=900)
    assert v.returncode == 4 and f'| {row} |' in v.stdout and 'differs' in v.stdout, v.stdout[-3000:] + v.stderr[-2000:]


def test_fifo_in_the_folder_is_named_not_waited_for(copy):
    "A FIFO where ltr_nb reads a JSON file is refused at once (reading it would wait for ever)."
    (copy / 'results.json').unlink(); os.mkfifo(copy / 'results.json')
    v = subprocess.run([LTR, '--verify', str(copy)], capture_output=True, text=True, timeout=120)
    assert v.returncode == 2 and 'is a FIFO where ltr_nb keeps a plain file' in v.stderr, v.stderr[-2000:]
