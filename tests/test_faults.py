"""Fault injection against the results folder: planted pickles, stale and foreign state, two writers, bad suites, signals,
a full disk, and a loop of kills at random points of a short job. Each case names what it guards (issue 19)."""
import json, os, random, shutil, signal, subprocess, sys, sysconfig, time
from pathlib import Path
import pytest
import torch

LTR = str(Path(sysconfig.get_path('scripts')) / 'ltr_nb')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
JOB = ['--only', 'joint-ib,crt', '--seeds', '0', '--epochs', '2', '--set', 'head_epochs=2', '--device', 'cpu']


def run(args, env=None, **kw):
    return subprocess.run([LTR, *args], capture_output=True, text=True, timeout=600, env=env or ENV, **kw)


class _Done:
    "What an in-process `ltr_nb` call left: exit status and the text on stdout / stderr."
    def __init__(self, code, out, err): self.returncode, self.stdout, self.stderr = code, out, err


def cli(args, capfd):
    "`ltr_nb args` in this process (no start-up cost): for inputs refused before any training."
    from ltr_nb.cli import main
    capfd.readouterr()
    try: code = main(list(args))
    except SystemExit as e: code = e.code
    o, e = capfd.readouterr(); return _Done(code, o, e)


def refused(r, *msgs):
    "Exit 2 with `ltr_nb: error:` naming what is wrong, and no traceback."
    assert r.returncode == 2, (r.returncode, r.stdout[-1500:], r.stderr[-3000:])
    assert 'ltr_nb: error:' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-3000:]
    for m in msgs: assert m in r.stderr, (m, r.stderr[-3000:])


@pytest.fixture(scope='module')
def done_job(tmp_path_factory):
    "A finished short job (two rows sharing one training run) to copy."
    out = tmp_path_factory.mktemp('job') / 'out'
    r = run([*JOB, '--out', str(out)]); assert r.returncode == 0, r.stderr[-3000:]
    return out


def _copy(src, tmp_path, name='o'):
    d = tmp_path / name; shutil.copytree(src, d); return d


class _Boom:
    "A pickle that runs a command when loaded."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


def _run_dir(out): return next((out / 'runs').iterdir())


def _put_record(f, rec, legacy=False):
    """Write run record `rec` as a consistent one would be: sealed (a record of another run, copied in), or as a record
    written before seals and digests (`legacy`)."""
    from ltr_nb.folder import sealed
    body = {k: v for k, v in rec.items() if k != 'seal' and not (legacy and k == 'weights')}
    f.write_text(json.dumps(body if legacy else sealed(body)))


# --- nothing from disk runs code ---------------------------------------------------------------------------------

@pytest.mark.parametrize('where', ['ckpt-resume', 'ckpt-dry-run', 'final', 'final-legacy'])
def test_planted_pickle_never_runs(done_job, tmp_path, capfd, where):
    """A crafted object in a checkpoint or the final weights is refused with the file named, on resume and under --dry_run:
    by the record's digest of its weights, or (a record written before digests) by the safe loader."""
    out = _copy(done_job, tmp_path); d = _run_dir(out); marker = tmp_path / 'ran'
    if where.startswith('ckpt'):
        (d / 'record.json').unlink(); (d / 'models' / 'final.pth').unlink(); shutil.rmtree(out / 'results')
        torch.save({'model': {}, 'epoch': 0, 'x': _Boom(marker)}, d / 'models' / 'ckpt.pth'); f = 'ckpt.pth'
    else:
        if where == 'final-legacy':
            _put_record(d / 'record.json', json.loads((d / 'record.json').read_text()), legacy=True)
        shutil.rmtree(out / 'results'); torch.save({'w': _Boom(marker)}, d / 'models' / 'final.pth'); f = 'final.pth'
    r = cli([*JOB, '--out', str(out), *(['--dry_run'] if where == 'ckpt-dry-run' else [])], capfd)
    refused(r, f, 'are not the ones run record' if where == 'final' else 'cannot be read safely')
    assert not marker.exists()


def test_best_weights_loaded_safely(tmp_path):
    "best.pth (read by the study script) goes through the same safe loader."
    from ltr_nb.core import load_state
    marker = tmp_path / 'ran'; torch.save({'w': _Boom(marker)}, tmp_path / 'best.pth')
    with pytest.raises(ValueError, match='best.pth'): load_state(tmp_path / 'best.pth', 'best weights')
    assert not marker.exists()


# --- damaged state files: a message naming the file, exit 2, never 1 (a crash) or 3 (diverged) -------------------

@pytest.mark.parametrize('damage', ['empty', 'truncated', 'garbage'])
@pytest.mark.parametrize('dry', [False, True])
def test_damaged_checkpoint(done_job, tmp_path, capfd, damage, dry):
    out = _copy(done_job, tmp_path); d = _run_dir(out)
    (d / 'record.json').unlink(); shutil.rmtree(out / 'results'); good = (d / 'models' / 'final.pth').read_bytes()
    (d / 'models' / 'final.pth').unlink()
    data = {'empty': b'', 'truncated': good[:len(good) // 2], 'garbage': b'not a checkpoint at all' * 10}[damage]
    (d / 'models' / 'ckpt.pth').write_bytes(data)
    refused(cli([*JOB, '--out', str(out), *(['--dry_run'] if dry else [])], capfd), 'ckpt.pth', '--fresh')


@pytest.mark.parametrize('file,content', [
    ('record', '{"status": "do'), ('record', '[1, 2]'), ('result', '{}'), ('result', 'nan'),
    ('manifest', '{"format": "ltr_nb-results", "version": 1, "experiments": 5}'), ('manifest', '')])
def test_damaged_json_state(done_job, tmp_path, capfd, file, content):
    out = _copy(done_job, tmp_path)
    f = {'record': _run_dir(out) / 'record.json', 'result': out / 'results' / 'crt' / 's0.json', 'manifest': out / 'manifest.json'}[file]
    if file == 'record': shutil.rmtree(out / 'results')
    f.write_text(content)
    refused(cli([*JOB, '--out', str(out)], capfd), f.name)


def test_record_of_another_configuration(done_job, tmp_path, capfd):
    "A run folder whose record does not match its key (copied by hand) is refused, not reported."
    out = _copy(done_job, tmp_path); d = _run_dir(out); shutil.rmtree(out / 'results')
    rec = json.loads((d / 'record.json').read_text()); rec['config']['epochs'] = 99; _put_record(d / 'record.json', rec)
    refused(cli([*JOB, '--out', str(out)], capfd), 'another configuration', 'record.json')


def _other_shape(state):
    "`state` as another number of classes would have it: its last tensor loses a row."
    k = [k for k, v in state.items() if getattr(v, 'ndim', 0) >= 1][-1]
    return {**state, k: state[k][:-1].clone()}


@pytest.mark.parametrize('where', ['final-legacy', 'ckpt'])
def test_weights_of_another_architecture(done_job, tmp_path, capfd, where):
    """Weights that do not fit the model (another architecture or number of classes) are refused with the file named, and
    the advice given (delete the run's folder) works: the same command then trains the run again."""
    from ltr_nb.core import load_state
    out = _copy(done_job, tmp_path); d = _run_dir(out); shutil.rmtree(out / 'results')
    good = load_state(d / 'models' / 'final.pth')
    if where == 'ckpt':
        (d / 'record.json').unlink(); (d / 'models' / 'final.pth').unlink(); f = d / 'models' / 'ckpt.pth'
        torch.save({'model': _other_shape(good), 'opt': {}, 'epoch': 0, 'n_epoch': 2, 'hists': {}}, f)
    else:
        _put_record(d / 'record.json', json.loads((d / 'record.json').read_text()), legacy=True)
        f = d / 'models' / 'final.pth'; torch.save(_other_shape(good), f)
    r = cli([*JOB, '--out', str(out)], capfd)
    refused(r, f"{str(f)!r} do not fit this model", f"delete {str(d)!r}")
    shutil.rmtree(d)
    assert cli([*JOB, '--out', str(out)], capfd).returncode == 0 and (d / 'record.json').is_file()


@pytest.mark.parametrize('dry', [False, True])
def test_checkpoint_of_another_run_refused(done_job, tmp_path, capfd, dry):
    """A checkpoint copied into a run's folder from another run of the same length (its own spec.json kept) is refused with
    the file and both runs named, by a resume and by a dry run's count of epochs done (issue 36)."""
    from ltr_nb.core import load_state
    out = _copy(done_job, tmp_path); d = _run_dir(out); shutil.rmtree(out / 'results')
    good = load_state(d / 'models' / 'final.pth')
    (d / 'record.json').unlink(); (d / 'models' / 'final.pth').unlink(); f = d / 'models' / 'ckpt.pth'
    torch.save({'model': good, 'opt': {}, 'epoch': 0, 'n_epoch': 2, 'hists': {}, 'run': 'f00ba4f00b'}, f)
    r = cli([*JOB, '--out', str(out), *(['--dry_run'] if dry else [])], capfd)
    refused(r, str(f), f"was written by run 'f00ba4f00b', not by run {d.name!r}")
    assert not (d / 'record.json').exists()


def test_record_without_its_weights(done_job, tmp_path, capfd):
    "A record that says done with its final weights gone names both files and the folder to delete."
    out = _copy(done_job, tmp_path); d = _run_dir(out); shutil.rmtree(out / 'results'); shutil.rmtree(d / 'models')
    refused(cli([*JOB, '--out', str(out)], capfd), 'says done but its final weights', 'are missing', f"delete {str(d)!r}")


@pytest.mark.parametrize('link', ['dangling', 'loop', 'elsewhere', 'runs', 'models'])
def test_symlinked_run_folder_refused(done_job, tmp_path, capfd, link):
    """A symbolic link in runs/ (a run's folder, runs/ itself, or a run's models/) is refused with the link and its target
    named, before anything is read or written through it; the folder it points to is left as it was."""
    out = _copy(done_job, tmp_path); d = _run_dir(out); shutil.rmtree(out / 'results')
    elsewhere = _copy(d, tmp_path, 'elsewhere'); before = sorted(p.name for p in elsewhere.rglob('*'))
    if link in ('dangling', 'loop', 'elsewhere'):
        shutil.rmtree(d); d.symlink_to({'dangling': tmp_path / 'gone', 'loop': d, 'elsewhere': elsewhere}[link])
        at = d
    elif link == 'runs':
        shutil.move(out / 'runs', tmp_path / 'runs'); (out / 'runs').symlink_to(tmp_path / 'runs'); at = out / 'runs'
    else:
        shutil.rmtree(d / 'models'); (d / 'models').symlink_to(elsewhere / 'models'); at = d / 'models'
    for dry in ([], ['--dry_run']):
        r = cli([*JOB, '--out', str(out), *dry], capfd)
        refused(r, f"{str(at)!r} is a symbolic link", *(['which does not exist'] if link in ('dangling', 'loop') else []))
    assert sorted(p.name for p in elsewhere.rglob('*')) == before


# --- a result is bound to what produced it -------------------------------------------------------------------------

def test_stale_result_never_reported(tmp_path, capfd):
    "ib for 2 epochs, cb for 2, then ib for 3 into one folder: the third never prints the 2-epoch result."
    out = str(tmp_path / 'o'); base = ['--seeds', '0', '--device', 'cpu', '--out', out]
    assert cli(['--only', 'joint-ib', '--epochs', '2', *base], capfd).returncode == 0
    assert cli(['--only', 'joint-cb', '--epochs', '2', *base], capfd).returncode == 0
    refused(cli(['--only', 'joint-ib', '--epochs', '3', *base], capfd), "experiments ['joint-ib'] with another configuration")
    m = json.loads((tmp_path / 'o' / 'manifest.json').read_text())
    assert [e['name'] for e in m['experiments']] == ['joint-ib', 'joint-cb']        # the union, not the last selection


def test_tampered_result_key_recomputed(done_job, tmp_path, capfd):
    "A stored result whose key differs from the requested one is computed again, never printed."
    out = _copy(done_job, tmp_path); f = out / 'results' / 'crt' / 's0.json'
    r = json.loads(f.read_text()); good = r['test']['all']
    r['key'] = 'other'; r['test']['all'] = 0.123456; f.write_text(json.dumps(r))
    p = cli([*JOB, '--out', str(out)], capfd); assert p.returncode == 0, p.stderr
    assert 'computing it again' in p.stdout and json.loads(f.read_text())['test']['all'] == good
    assert '12.3' not in (out / 'table.md').read_text()


def test_seeds_that_collide_refused(tmp_path, capfd):
    refused(cli(['--seeds', '0,4294967296', '--out', str(tmp_path / 'o')], capfd), '4294967295')
    assert not (tmp_path / 'o').exists()


# --- one writer per folder -----------------------------------------------------------------------------------------

def _background(args, tmp_path):
    "Start `ltr_nb args` writing to files (a pipe nobody reads would fill and block it); returns (process, stderr file)."
    err = tmp_path / 'stderr.txt'
    p = subprocess.Popen([LTR, *args], stdout=open(tmp_path / 'stdout.txt', 'w'), stderr=open(err, 'w'), text=True, env=ENV)
    return p, err


def test_second_job_on_one_folder_refused(tmp_path):
    "While one job trains, the same command, and a --fresh one, on its folder are refused with the holder's PID; the first ends intact."
    out = tmp_path / 'o'; args = ['--only', 'joint-ib', '--seeds', '0', '--epochs', '2000', '--device', 'cpu', '--out', str(out)]
    first, err = _background(args, tmp_path)
    t0 = time.time()
    while not list(out.glob('runs/*/models/ckpt.pth')):
        assert first.poll() is None and time.time() - t0 < 300, err.read_text()[-2000:]
        time.sleep(0.05)
    for extra in ([], ['--fresh']):
        refused(run([*args, *extra]), 'in use by another ltr_nb job', f'PID {first.pid}')
    assert first.poll() is None, 'the first job ended before the second was tried: not a test of the lock'
    first.send_signal(signal.SIGINT); first.wait(timeout=120)
    assert first.returncode == 130, err.read_text()[-2000:]
    from ltr_nb.core import load_state
    assert load_state(next(out.glob('runs/*/models/ckpt.pth')))['epoch'] >= 0      # the first job's state is intact
    assert _stray_tmp(out) == []


# --- --fresh deletes only what ltr_nb wrote --------------------------------------------------------------------------

def test_fresh_spares_a_foreign_manifest(tmp_path, capfd):
    d = tmp_path / 'app'; d.mkdir()
    (d / 'manifest.json').write_text('{"name": "my app", "start_url": "/"}'); (d / 'index.html').write_text('<html>')
    refused(cli([*JOB, '--out', str(d), '--fresh'], capfd), "not ltr_nb's")
    assert sorted(os.listdir(d)) == ['index.html', 'manifest.json']


def test_fresh_keeps_your_files(done_job, tmp_path, capfd):
    out = _copy(done_job, tmp_path); (out / 'my-notes.txt').write_text('mine')
    assert cli([*JOB, '--out', str(out), '--fresh'], capfd).returncode == 0
    assert (out / 'my-notes.txt').read_text() == 'mine' and (out / 'table.md').is_file()


# --- suites and options validated before anything is written ---------------------------------------------------------

def _suite(tmp_path, **change):
    s = {'name': 't', 'defaults': {'dataset': 'digits', 'epochs': 1, 'seeds': [0]},
         'experiments': [{'name': 'a', 'method': 'joint'}]}
    top = change.pop('top', {}); s.update(top)
    if change: s['experiments'][0].update(change)
    p = tmp_path / 's.json'; p.write_text(json.dumps(s)); return str(p)


@pytest.mark.parametrize('change,msg', [
    (dict(epochs='ten'), "epochs='ten' (needs int|None)"), (dict(many='100'), "many='100' (needs int)"),
    (dict(dataset=5), 'dataset=5 (needs str)'), (dict(epochs=2.5), 'epochs=2.5 (needs int|None)'),
    (dict(options=[1]), 'options=[1] (needs dict)'), (dict(paper={'All': 'x'}), "paper={'All': 'x'} must map"),
    (dict(bf16='yes'), "bf16='yes' (needs bool)"), (dict(seeds=[0, 'a']), 'seeds=[0, \'a\'] must be integers'),
    (dict(name='n' * 300), 'is 300 bytes long in UTF-8; use at most 80'),
    (dict(top={'experimens': []}), "unknown keys ['experimens']"), (dict(top={'defaults': [1]}), 'defaults=[1] must be a dict'),
    (dict(top={'experiments': [[1]]}), 'experiment 0 must be an object'),
])
def test_bad_suite_refused_before_writing(tmp_path, capfd, change, msg):
    out = tmp_path / 'o'
    refused(cli([_suite(tmp_path, **change), '--out', str(out)], capfd), msg)
    assert not out.exists()


@pytest.mark.parametrize('opt,msg', [('sampler=[1]', 'options.sampler=[1] has the wrong type'),
                                     ('head_epochs=true', 'options.head_epochs=True has the wrong type'),
                                     ('head_epochs=2.5', 'options.head_epochs=2.5 has the wrong type')])
def test_bad_option_types(tmp_path, capfd, opt, msg):
    refused(cli(['--only', 'joint-ib,crt', '--set', opt, '--out', str(tmp_path / 'o')], capfd), msg)
    assert not (tmp_path / 'o').exists()


def test_bad_data_root_env(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv('LTR_NB_DATA', '~nosuchuser/x')
    refused(cli(['--dataset', 'fashion-mnist', '--out', str(tmp_path / 'o')], capfd), "$LTR_NB_DATA='~nosuchuser/x' cannot be expanded")


# --- list-file folders: unreadable images and arch mismatches before any training ---------------------------------------

@pytest.fixture(scope='module')
def list_folder(tmp_path_factory):
    from ltr_nb.data import lt_dataset
    from ltr_nb.listfile import write_list_files
    d = tmp_path_factory.mktemp('lists'); write_list_files(lt_dataset('digits'), d); return d


@pytest.mark.parametrize('split,bad', [('train', b''), ('train', b'hello, not a jpeg'), ('test', b'')])
def test_unreadable_image_refused_before_training(list_folder, tmp_path, capfd, split, bad):
    d = _copy(list_folder, tmp_path, 'l'); line = (d / f'{split}.txt').read_text().splitlines()[3]
    img = d / line.rsplit(maxsplit=1)[0]; img.write_bytes(bad)
    out = tmp_path / 'o'
    refused(cli(['--dataset', f'list:{d}', '--arch', 'smallcnn', '--size', '8', '--only', 'joint-ib', '--out', str(out)], capfd),
            f'{split}.txt, line 4', 'is not a readable image')
    assert not out.exists()


def test_mlp_on_list_files_refused(list_folder, tmp_path, capfd):
    refused(cli(['--dataset', f'list:{list_folder}', '--arch', 'mlp', '--only', 'joint-ib', '--out', str(tmp_path / 'o')], capfd),
            "arch='mlp' needs in-memory inputs")
    assert not (tmp_path / 'o').exists()


@pytest.mark.parametrize('data', ['digits', 'list'])
def test_bf16_from_the_command_line(list_folder, tmp_path, data):
    "--bf16 trains and evaluates (the device reached autocast as a string before)."
    extra = ['--dataset', f'list:{list_folder}', '--arch', 'smallcnn', '--size', '8'] if data == 'list' else []
    r = run([*JOB[:-2], '--epochs', '1', *extra, '--bf16', '--out', str(tmp_path / 'o')])
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads(next((tmp_path / 'o' / 'runs').glob('*/record.json')).read_text())
    assert rec['config']['bf16'] is True and rec['status'] == 'done'


def test_report_of_a_missing_split_raises(list_folder):
    "feats_report / lt_report on a split the data does not have: an error, not a report of NaNs."
    from fastai.vision.all import ImageDataLoaders, Resize
    from ltr_nb.evaluate import cache_features, feats_report
    from ltr_nb.metrics import lt_report
    from ltr_nb.models import create_model
    dls = ImageDataLoaders.from_folder(list_folder, train='train', valid='val', item_tfms=Resize(8), bs=16, device='cpu')
    m = create_model('smallcnn', 10); f = cache_features(m, dls)
    with pytest.raises(ValueError, match="split='test'"): feats_report(m, f, 'test')
    with pytest.raises(ValueError, match='no samples'): lt_report(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long), [5] * 10)


# --- signals and a full disk ---------------------------------------------------------------------------------------

def _stray_tmp(out): return [str(p) for p in Path(out).rglob('*.tmp')]


def test_sigterm_like_ctrl_c(tmp_path):
    out = tmp_path / 'o'; args = ['--only', 'joint-ib', '--seeds', '0', '--epochs', '2000', '--device', 'cpu', '--out', str(out)]
    p, err = _background(args, tmp_path); t0 = time.time()
    while not list(out.glob('runs/*/models/ckpt.pth')):
        assert p.poll() is None and time.time() - t0 < 300; time.sleep(0.05)
    time.sleep(0.3); p.send_signal(signal.SIGTERM); p.wait(timeout=120); se = err.read_text()
    assert p.returncode == 143 and 'terminated (SIGTERM)' in se and 'run the same command to resume' in se and 'Traceback' not in se, se
    assert _stray_tmp(out) == []


SWEEP_JOB = ['--only', 'wb-paper', '--seeds', '0', '--epochs', '40', '--set', 'wd=[0,0.001]', '--set', 'wd2=[0,0.1]',
             '--set', 'r=[0,0.5]', '--device', 'cpu']


def test_signals_in_a_sweep(tmp_path):
    """Ctrl-C, then SIGTERM, while a swept training run trains (WB's stage-1 WD grid, an Optuna trial): the stop
    message only, no Optuna traceback; the same command then ends with the uninterrupted table, re-queuing the stopped
    point without Optuna's 're-evaluating' warning."""
    ref = tmp_path / 'ref'; r = run([*SWEEP_JOB, '--out', str(ref)]); assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / 'o'
    for sig, code, why in ((signal.SIGINT, 130, 'interrupted'), (signal.SIGTERM, 143, 'terminated (SIGTERM)')):
        p, err = _background([*SWEEP_JOB, '--out', str(out)], tmp_path); t0 = time.time()
        while not [c for c in out.glob('runs/*/models/ckpt.pth') if c.stat().st_mtime > t0]:   # an epoch saved by this process
            assert p.poll() is None and time.time() - t0 < 300, err.read_text()[-3000:]; time.sleep(0.02)
        p.send_signal(sig); p.wait(timeout=120); se = err.read_text()
        assert p.returncode == code and why in se and 'Traceback' not in se and 'Trial' not in se, se[-3000:]
    r = run([*SWEEP_JOB, '--out', str(out)])
    assert r.returncode == 0 and 'GridSampler' not in r.stderr, r.stderr[-3000:]
    assert (out / 'table.md').read_text() == (ref / 'table.md').read_text()


_SHUTDOWN = """
import atexit, os, signal, sys, time
import ltr_nb.cli as c
def kill_self(*sigs):
    for s in sigs: os.kill(os.getpid(), s); time.sleep(0.05)
def fake_main(case=sys.argv[1]):
    print('wrote the table', flush=True)
    if case == 'atexit': atexit.register(kill_self, signal.SIGINT, signal.SIGTERM); return 0
    if case == 'exit2': atexit.register(kill_self, signal.SIGINT); raise SystemExit(2)
    if case == 'late-term': kill_self(signal.SIGTERM); return 0
    if case == 'main-term': c._real_main(['--list']); kill_self(signal.SIGTERM); return 0
    kill_self(signal.SIGINT); return 0      # after main's own handler: the signal lands in entry
c._real_main, c.main = c.main, fake_main
c.entry()
"""


@pytest.mark.parametrize('case,code', [('atexit', 0), ('exit2', 2), ('late', 130), ('late-term', 143), ('main-term', 143)])
def test_signal_after_the_job_is_quiet(case, code):
    """The CI failures of 2026-12-02: SIGINT landing in an exit handler while the interpreter shut down printed a
    traceback; SIGTERM landing after `main`'s handler, before the quiet exit, killed the process silently (-15)."""
    r = subprocess.run([sys.executable, '-c', _SHUTDOWN, case], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == code and 'Traceback' not in r.stderr and 'Exception ignored' not in r.stderr, (r.returncode, r.stderr)
    why = {130: 'interrupted', 143: 'terminated (SIGTERM)'}.get(code)
    if why: assert why in r.stderr and 'run the same command to resume' in r.stderr, r.stderr


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_at_the_last_line(done_job, tmp_path, sig):
    "The real command, signalled the moment it prints its last line: an exit code and no traceback, whatever the timing."
    out = _copy(done_job, tmp_path)
    p = subprocess.Popen([LTR, *JOB, '--out', str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    for line in p.stdout:
        if line.startswith('wrote '): p.send_signal(sig); break
    so, se = p.communicate(timeout=120)
    assert p.returncode in (0, 130, 143) and 'Traceback' not in se and 'Exception ignored' not in se, (p.returncode, se[-3000:])


def test_main_leaves_the_callers_signal_handlers(capfd):
    "Only the console script ignores late signals; `main` called in a process (a notebook) changes no handler."
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    assert cli(['--list'], capfd).returncode == 0
    assert {s: signal.getsignal(s) for s in before} == before


def _mount_tmpfs(d, size):
    d.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(d)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f'cannot mount a small tmpfs here ({r.stderr.strip()[:120]})')


def test_disk_full_is_a_message(tmp_path):
    "A full disk: a message naming the folder and the bytes needed, no partial .tmp, earlier results intact."
    disk = tmp_path / 'disk'; _mount_tmpfs(disk, '4m')
    try:
        out = disk / 'o'
        one = ['--seeds', '0', '--epochs', '2', '--device', 'cpu', '--out', str(out)]
        assert run(['--only', 'joint-ib', *one]).returncode == 0
        before = (out / 'results' / 'joint-ib' / 's0.json').read_bytes()
        fill = disk / 'fill'
        with open(fill, 'wb') as f:
            try:
                while True: f.write(b'\0' * 65536)
            except OSError: pass
        with open(fill, 'r+b') as f: f.truncate(max(0, fill.stat().st_size - 24 * 1024))   # room for the manifest, not for the weights
        r = run(['--only', 'joint-ib,joint-cb', *one])
        refused(r, 'no space left in', 'bytes')
        assert _stray_tmp(out) == [] and (out / 'results' / 'joint-ib' / 's0.json').read_bytes() == before
    finally: subprocess.run(['umount', str(disk)])


# --- killed at random points, resumed: the uninterrupted table and weights ---------------------------------------------

KILL_JOB = ['--only', 'joint-ib,crt,wb', '--seeds', '0', '--epochs', '4', '--set', 'head_epochs=3', '--device', 'cpu']


def _weights(out):
    return {p.parent.parent.name: torch.load(p, weights_only=True) for p in (out / 'runs').glob('*/models/final.pth')}


def _started(p):
    "Wait for the job's first line (start-up done, the job begun); the seconds it took."
    t0 = time.time(); line = p.stdout.readline(); assert line.startswith('suite '), line + p.communicate()[1][-2000:]
    return time.time() - t0


def test_kill_loop_resumes_to_the_same_results(tmp_path):
    "15 signals (SIGKILL, SIGTERM, SIGINT, five of each) at random times of a short job (training, heads, WB stage 2, writing); after each chain of kills the same command ends with the uninterrupted table, results and weights."
    ref = tmp_path / 'ref'
    p = subprocess.Popen([LTR, *KILL_JOB, '--out', str(ref)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    _started(p); t0 = time.time(); so, se = p.communicate(timeout=600); dur = time.time() - t0
    assert p.returncode == 0, se[-3000:]
    ref_table, ref_w = (ref / 'table.md').read_text(), _weights(ref)
    rng = random.Random(19); sigs = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
    kills = chains = 0; out = None
    while kills < 15:
        if out is None: chains += 1; out = tmp_path / f'c{chains}'
        p = subprocess.Popen([LTR, *KILL_JOB, '--out', str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        _started(p)
        try: p.wait(timeout=rng.uniform(0, dur))
        except subprocess.TimeoutExpired:
            sig = sigs[kills % 3]; p.send_signal(sig); so, se = p.communicate(timeout=120); kills += 1
            assert 'Traceback' not in se, se[-3000:]
            finished = p.returncode == 0 or 'wrote ' in so         # the signal landed after the job's last line
            if not finished and sig != signal.SIGKILL: assert p.returncode in (130, 143), (p.returncode, se[-2000:])
            continue
        so, se = p.communicate()
        assert p.returncode == 0, se[-3000:]
        assert (out / 'table.md').read_text() == ref_table, 'a resumed job ended with another table'
        w = _weights(out); assert w.keys() == ref_w.keys()
        for k in w:
            for n in w[k]: assert torch.equal(w[k][n], ref_w[k][n]), (k, n)
        out = None
    if out is not None:                                     # finish the last chain
        r = run([*KILL_JOB, '--out', str(out)]); assert r.returncode == 0, r.stderr[-3000:]
        assert (out / 'table.md').read_text() == ref_table
    print(f'kill loop: {kills} signals over {chains} chains, every chain resumed to the uninterrupted table and weights')


def test_read_only_folder(done_job, tmp_path, capfd):
    "A results folder on a read-only file system: a job is refused with the folder named; --dry_run, which writes nothing, works."
    ro = tmp_path / 'ro'; _mount_tmpfs(ro, '64m')
    try:
        out = _copy(done_job, ro); shutil.rmtree(out / 'results')
        assert subprocess.run(['mount', '-o', 'remount,ro', str(ro)]).returncode == 0
        refused(cli([*JOB, '--out', str(out)], capfd), f"out={str(out)!r} cannot be written")
        assert cli([*JOB, '--out', str(out), '--dry_run'], capfd).returncode == 0
    finally: subprocess.run(['umount', str(ro)])


# --- the probe of a hostile-but-fair user (issue 36, second round): links, kinds, edited records -------------------

def _victim(tmp_path):
    v = tmp_path / 'outside' / 'victim.json'; v.parent.mkdir(exist_ok=True); v.write_text('{"keep": "me"}'); return v


@pytest.mark.parametrize('at', ['results.json.tmp', 'results/crt/s0.json.tmp', 'results/crt/s0.json', 'results/crt',
                                '.write-test', 'sweeps.db', 'manifest.json', 'RUN/record.json', 'RUN/spec.json',
                                'RUN/models/final.pth', 'RUN/models/final.pth.tmp', 'per_class_acc.png'])
@pytest.mark.parametrize('dry', [False, True])
def test_link_planted_in_the_folder(done_job, tmp_path, capfd, at, dry):
    """A symbolic link anywhere among the folder's own files (temporary files, per-seed results, a row's folder, the write
    probe, the sweeps database, the manifest, a run's files) is refused with the link named before anything is read or
    written through it; what it points to is unchanged."""
    out = _copy(done_job, tmp_path); d = _run_dir(out); v = _victim(tmp_path)
    p = Path(str(out / at).replace(str(out / 'RUN'), str(d)))
    if p.is_dir(): shutil.rmtree(p)
    elif p.exists(): p.unlink()
    (out / 'results' / 'crt' / 's0.json').unlink(missing_ok=True)            # (a result to write again)
    p.symlink_to(v.parent if at == 'results/crt' else v)
    refused(cli([*JOB, '--out', str(out), *(['--dry_run'] if dry else [])], capfd), f"{str(p)!r} is a symbolic link")
    assert v.read_text() == '{"keep": "me"}' and sorted(os.listdir(v.parent)) == ['victim.json']


def test_hard_linked_lock_refused(done_job, tmp_path, capfd):
    "A lock file that is a hard link of a file elsewhere is refused; that file keeps its content."
    out = _copy(done_job, tmp_path); v = _victim(tmp_path)
    (out / '.ltr_nb.lock').unlink(missing_ok=True); os.link(v, out / '.ltr_nb.lock')
    refused(cli([*JOB, '--out', str(out)], capfd), 'hard links')
    assert v.read_text() == '{"keep": "me"}'


@pytest.mark.parametrize('at,kind', [('results.json', 'dir'), ('results', 'file'), ('results/crt/s0.json', 'dir'),
                                     ('table.md', 'dir'), ('RUN/models', 'file')])
def test_wrong_kind_refused_before_training(done_job, tmp_path, capfd, at, kind):
    "A folder where ltr_nb keeps a file (or a file where it keeps a folder) is named before anything runs, not after."
    out = _copy(done_job, tmp_path); d = _run_dir(out)
    p = Path(str(out / at).replace(str(out / 'RUN'), str(d)))
    shutil.rmtree(p) if p.is_dir() else p.unlink()
    p.mkdir() if kind == 'dir' else p.write_text('x')
    refused(cli([*JOB, '--out', str(out)], capfd), str(p), 'where ltr_nb keeps a')


def test_your_png_stays(done_job, tmp_path, capfd):
    "A png of yours at the top of the folder (or a folder named like one) is neither deleted nor in the way."
    out = _copy(done_job, tmp_path); (out / 'my_figure.png').write_text('mine'); (out / 'album.png').mkdir()
    assert cli([*JOB, '--out', str(out)], capfd).returncode == 0
    assert (out / 'my_figure.png').read_text() == 'mine' and (out / 'album.png').is_dir() and (out / 'per_class_acc.png').is_file()


@pytest.mark.parametrize('edit,msg', [(dict(options=5), 'not one ltr_nb wrote'), (dict(method=['joint']), 'not one ltr_nb wrote'),
                                      (dict(epochs='two'), 'not one ltr_nb wrote')])
def test_edited_manifest_entry_refused(done_job, tmp_path, capfd, edit, msg):
    out = _copy(done_job, tmp_path); f = out / 'manifest.json'; m = json.loads(f.read_text())
    m['experiments'][0].update(edit); f.write_text(json.dumps(m))
    refused(cli([*JOB, '--out', str(out)], capfd), 'manifest.json', msg)


@pytest.mark.parametrize('edit', ['banana', 'diverged-without-error', 'negative', 'above-one'])
def test_unsound_result_recomputed(done_job, tmp_path, capfd, edit):
    "A per-seed result with a status ltr_nb never writes, a divergence with no error, or an accuracy outside [0, 1] (even resealed) is recomputed."
    from ltr_nb.folder import sealed
    out = _copy(done_job, tmp_path); f = out / 'results' / 'crt' / 's0.json'; good = json.loads(f.read_text())
    r = dict(good)
    if edit == 'banana': r['status'] = 'banana'
    elif edit == 'diverged-without-error': r = dict(status='diverged', seed=0, key=good.get('key'))
    else: r['test'] = dict(good['test'], all=-5.0 if edit == 'negative' else 1.5)
    f.write_text(json.dumps(sealed({k: v for k, v in r.items() if k != 'seal'})))
    res = cli([*JOB, '--out', str(out)], capfd)
    assert res.returncode == 0 and 'computing it again' in res.stdout, (res.stdout[-2000:], res.stderr[-2000:])
    assert json.loads(f.read_text())['test']['all'] == good['test']['all']


def test_long_or_bad_out_refused(tmp_path, capfd):
    refused(cli([*JOB, '--out', str(tmp_path / ('x' * 300))], capfd), 'File name too long')
    (tmp_path / 'afile').write_text('x')
    refused(cli([*JOB, '--out', str(tmp_path / 'afile' / 'sub')], capfd), 'is a file, not a folder')


def test_huge_option_refused(tmp_path, capfd):
    for dry in ([], ['--dry_run']):
        refused(cli(['--only', 'crt', '--seeds', '0', '--epochs', '2', '--set', 'head_epochs=' + '9' * 23, '--device', 'cpu',
                     '--out', str(tmp_path / 'o'), *dry], capfd), 'is too large; it must be at most 100000')
    assert not (tmp_path / 'o').exists()


def test_edited_record_env_is_not_a_crash(done_job, tmp_path, capfd):
    "A run record whose env or timings were edited into other types: --dry_run estimates without them."
    out = _copy(done_job, tmp_path); f = _run_dir(out) / 'record.json'; rec = json.loads(f.read_text())
    rec.update(env='oops', epoch_seconds=['x', None]); f.write_text(json.dumps(rec))
    assert cli([*JOB, '--out', str(out), '--dry_run'], capfd).returncode == 0


@pytest.mark.parametrize('out', ['', 'nl\nname', 'tab\there'])
def test_out_that_names_no_folder(tmp_path, capfd, out, monkeypatch):
    "An empty --out (it used to write runs/<suite> silently) or one with a control character is refused; nothing is made."
    monkeypatch.chdir(tmp_path)
    refused(cli([*JOB, '--out', out], capfd), 'is not a folder name')
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('kind', ['fifo', 'folder', 'device'])
def test_suite_that_is_not_a_file(tmp_path, capfd, kind):
    "A suite path that exists but is no plain file is named as such (a FIFO is never opened: no hang)."
    p = tmp_path / 's.json'
    if kind == 'fifo': os.mkfifo(p)
    elif kind == 'folder': p.mkdir()
    else: p.symlink_to('/dev/zero')
    refused(cli([str(p), '--out', str(tmp_path / 'o')], capfd), 'is not a plain file')


@pytest.mark.parametrize('status', ['diverged', 5, 'banana'])
def test_record_status_its_folder_contradicts(done_job, tmp_path, capfd, status):
    "A run record edited to say diverged (its final weights are there) or a status ltr_nb never writes is refused, named."
    out = _copy(done_job, tmp_path); d = _run_dir(out); shutil.rmtree(out / 'results')
    f = d / 'record.json'; rec = json.loads(f.read_text()); rec['status'] = status; _put_record(f, rec)
    refused(cli([*JOB, '--out', str(out)], capfd), str(f), 'which its folder contradicts')


def test_fifo_record_in_a_dry_run(done_job, tmp_path, capfd):
    "A FIFO at a run's record.json: the dry run's estimate names it instead of waiting for ever."
    out = _copy(done_job, tmp_path); (out / 'runs' / 'zzzzzzzzzz').mkdir(); os.mkfifo(out / 'runs' / 'zzzzzzzzzz' / 'record.json')
    refused(cli([*JOB, '--out', str(out), '--dry_run'], capfd), 'is a FIFO where ltr_nb keeps a plain file')


@pytest.mark.parametrize('at', ['sweeps.db', 'sweeps.db-journal', 'results.json', 'results/crt/s0.json'])
@pytest.mark.parametrize('dry', [False, True])
def test_fifo_among_the_folders_files(done_job, tmp_path, capfd, at, dry):
    """A FIFO where ltr_nb keeps a plain file (the sweep database, SQLite's journal beside it, a results file) is refused
    by name, by a resume and by a dry run, before anything opens it (it would block) or writes."""
    out = _copy(done_job, tmp_path); p = out / at
    if p.exists(): p.unlink()
    os.mkfifo(p); before = sorted(str(q.relative_to(out)) for q in out.rglob('*'))
    refused(cli([*JOB, '--out', str(out), *(['--dry_run'] if dry else [])], capfd), f"{str(p)!r} is a FIFO where ltr_nb keeps a plain file")
    assert sorted(str(q.relative_to(out)) for q in out.rglob('*')) == before


@pytest.mark.parametrize('at', ['results/crt/s0.json', 'runs/*/record.json', 'runs/*/models/final.pth'])
def test_advice_for_a_damaged_file_works(done_job, tmp_path, capfd, at):
    """A damaged file is named with advice that deletes no more than it must (a result file itself; a run's folder for
    a run's file, never the results folder), and following the advice gives a folder that resumes to a result."""
    out = _copy(done_job, tmp_path); f = next(out.glob(at)); f.write_bytes(b'{"x":')
    if at.startswith('runs'): shutil.rmtree(out / 'results')         # (a finished row does not read its run again)
    r = cli([*JOB, '--out', str(out)], capfd)
    gone = f.parent.parent if f.parent.name == 'models' else f.parent if f.parent.parent.name == 'runs' else f
    refused(r, str(f), f"delete {str(gone)!r}")
    assert f"delete {str(out)!r}" not in r.stderr
    shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
    assert cli([*JOB, '--out', str(out)], capfd).returncode == 0 and (out / 'results' / 'crt' / 's0.json').is_file()


def test_edited_run_record_refused(done_job, tmp_path, capfd):
    "A run record edited after it was written (its validation history, which chooses a sweep's point, or its config) is named."
    out = _copy(done_job, tmp_path); d = _run_dir(out); shutil.rmtree(out / 'results')
    f = d / 'record.json'; rec = json.loads(f.read_text()); assert 'seal' in rec
    rec['valid_cls_acc_hist'][-1] = [1.0] * len(rec['valid_cls_acc_hist'][-1]); f.write_text(json.dumps(rec))
    refused(cli([*JOB, '--out', str(out)], capfd), str(f), 'does not match its seal')


def test_storage_and_the_folder(tmp_path, capfd):
    """The folder's own sweeps.db given by name is the default; another SQLite file inside --out is refused; a dry run opens
    no storage; a hard-linked sweeps.db is refused (SQLite would write into the other file)."""
    s = tmp_path / 'sw.json'
    s.write_text(json.dumps(dict(name='sw', defaults=dict(dataset='digits', seeds=[0], epochs=2),
                                 experiments=[dict(name='crtwb', method='wb_crt', options=dict(wd=[1e-3, 1e-2], head_epochs=2))])))
    out = tmp_path / 'nx'; out.mkdir()
    assert cli([str(s), '--device', 'cpu', '--out', str(out), '--storage', f'sqlite:///{out}/sweeps.db'], capfd).returncode == 0
    refused(cli([str(s), '--device', 'cpu', '--out', str(tmp_path / 'n2'), '--storage', f'sqlite:///{tmp_path}/n2/x.db'], capfd),
            'is inside out=')
    far = tmp_path / 'far.db'
    assert cli([str(s), '--device', 'cpu', '--out', str(tmp_path / 'n3'), '--dry_run', '--storage', f'sqlite:///{far}'], capfd).returncode == 0
    assert not far.exists()
    v = _victim(tmp_path); (out / 'sweeps.db').unlink(); os.link(v, out / 'sweeps.db'); shutil.rmtree(out / 'results')
    refused(cli([str(s), '--device', 'cpu', '--out', str(out)], capfd), 'hard links')
    assert v.read_text() == '{"keep": "me"}'


def test_suite_name_that_is_no_folder_name(tmp_path, capfd):
    s = tmp_path / 'bad.json'; s.write_text(json.dumps(dict(name='../../x', experiments=[dict(name='a', method='joint')])))
    refused(cli([str(s), '--dry_run'], capfd), "the suite's name='../../x' must be a non-empty folder name")


@pytest.mark.parametrize('args,msg', [(['--verify', 'results/digits-lt', '--fresh', '--epochs', '5'], '--fresh, --epochs would be ignored'),
                                      (['fmnist-lt', '--verify', 'results/digits-lt'], 'a suite would be ignored'),
                                      (['--committed_weights', '--dry_run'], 'applies only with --verify')])
def test_options_that_would_be_ignored(capfd, args, msg):
    "Options that a --verify (or a job without it) would silently ignore are refused, before anything runs."
    r = cli(args, capfd)
    assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]


def test_refused_sweep_prints_one_line(tmp_path, capfd):
    "A sweep stopped by a refusal (here a run folder copied over another's name) prints the error, not Optuna's traceback."
    s = tmp_path / 'sw.json'
    s.write_text(json.dumps(dict(name='sw', defaults=dict(dataset='digits', seeds=[0], epochs=2),
                                 experiments=[dict(name='crtwb', method='wb_crt', options=dict(wd=[1e-3, 1e-2], head_epochs=2))])))
    out = tmp_path / 'o'
    assert cli([str(s), '--device', 'cpu', '--out', str(out)], capfd).returncode == 0
    a, b = sorted((out / 'runs').iterdir()); shutil.rmtree(a); shutil.copytree(b, a)
    shutil.rmtree(out / 'results'); (out / 'sweeps.db').unlink()
    r = cli([str(s), '--device', 'cpu', '--out', str(out)], capfd)
    refused(r, "does not hash to its folder's name")
    assert 'Trial' not in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]


def test_list_data_with_no_training_batch_refused(tmp_path, capfd):
    """A list-file dataset with fewer training images than the batch size (its loader drops the incomplete batch) is
    refused before anything is written: it would train on no batch and record the run as done (probe 4, D3)."""
    import numpy as np
    from PIL import Image
    d = tmp_path / 'lists'; (d / 'img').mkdir(parents=True)
    for i in range(12): Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), np.uint8)).save(d / 'img' / f'{i}.png')
    (d / 'train.txt').write_text(''.join(f'img/{i}.png {i % 3}\n' for i in range(9)))
    (d / 'val.txt').write_text(''.join(f'img/{i}.png {i % 3}\n' for i in range(9, 12)))
    out = tmp_path / 'out'
    args = ['--dataset', f'list:{d}', '--only', 'joint-ib', '--seeds', '0', '--epochs', '1', '--device', 'cpu', '--size', '16',
            '--arch', 'smallcnn', '--out', str(out)]
    for dry in ([], ['--dry_run']):
        refused(cli([*args, '--bs', '64', *dry], capfd), "yields no batch: 9 training images with bs=64", "give bs <= 9")
        assert not out.exists()


def test_edited_table_md_caught_by_verify(done_job, tmp_path):
    "--verify reads table.md line for line: an added row, an edited method or seeds column, a removed row (probe 4, D2)."
    for edit in (lambda t: t + '| lws | ib + LWS | 3 | 99.0 | 90.0 | 80.0 | 88.0 |\n',
                 lambda t: t.replace('| crt | ib + cRT | 1 |', '| crt | ib + cRT | 3 |'),
                 lambda t: t.replace('| crt | ib + cRT |', '| crt | ib + LWS |'),
                 lambda t: '\n'.join(l for l in t.splitlines() if not l.startswith('| crt ')) + '\n'):
        out = _copy(done_job, tmp_path, f'v{len(list(tmp_path.iterdir()))}'); t = out / 'table.md'
        before = t.read_text(); t.write_text(edit(before)); assert t.read_text() != before
        v = run(['--verify', str(out)])
        assert v.returncode == 4 and 'table.md' in v.stdout, v.stdout[-2000:] + v.stderr[-2000:]
