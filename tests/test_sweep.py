"""Sweeps of training runs (issue 21): two `ltr_nb` processes, each with its own --out, share one SQLite sweep; every grid
point is trained once (the chosen one once per folder: a folder reads only itself), and both choose what one process
alone chooses. Bad storage and grids are refused before training."""
import json, subprocess, sysconfig
from pathlib import Path
import pytest

LTR = str(Path(sysconfig.get_path('scripts')) / 'ltr_nb')
GRID = [0.0, 2e-3, 1e-2]
SUITE = dict(name='sw', defaults=dict(dataset='digits', seeds=[0], epochs=5),
             experiments=[dict(name='wb-sweep', method='wb', options=dict(wd=GRID, wd2=0.1, r=0.1))])


def _suite(tmp):
    p = tmp / 'sw.json'; p.write_text(json.dumps(SUITE)); return str(p)


def _trained(out:Path) -> set:
    "Keys of the runs this folder trained (a finished run has its record)."
    return {p.parent.name for p in (out / 'runs').glob('*/record.json')}


def _result(out:Path) -> dict: return json.loads((out / 'results' / 'wb-sweep' / 's0.json').read_text())


def test_two_processes_share_one_sweep(tmp_path):
    s, url = _suite(tmp_path), f"sqlite:///{tmp_path}/shared.db"
    cmd = lambda out: [LTR, s, '--device', 'cpu', '--out', str(tmp_path / out), '--storage', url]
    ps = [subprocess.Popen(cmd(o), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for o in ('a', 'b')]
    outs = [p.communicate(timeout=900)[0] for p in ps]
    assert all(p.returncode == 0 for p in ps), outs
    a, b = _trained(tmp_path / 'a'), _trained(tmp_path / 'b')
    best = _result(tmp_path / 'a')['tuned_train']['run']
    assert a & b == {best} and len(a | b) == len(GRID), (a, b)       # every other point trained once, by one of them;
    # the chosen run is in both folders: a folder reads and writes only inside itself
    one = subprocess.run([LTR, s, '--device', 'cpu', '--out', str(tmp_path / 'one')], capture_output=True, text=True, timeout=900)
    assert one.returncode == 0, one.stdout + one.stderr
    assert len(_trained(tmp_path / 'one')) == len(GRID) and (tmp_path / 'one' / 'sweeps.db').is_file()
    ra, rb, r1 = (_result(tmp_path / o) for o in ('a', 'b', 'one'))
    assert ra['tuned_train'] == rb['tuned_train'] == r1['tuned_train']  # the same choice, the same validation curve
    assert ra['test'] == rb['test'] == r1['test']
    assert [c['params']['wd'] for c in r1['tuned_train']['curve']] == GRID
    db = (tmp_path / 'shared.db').read_bytes()
    v = subprocess.run([LTR, '--verify', str(tmp_path / 'a')], capture_output=True, text=True, timeout=900)
    assert v.returncode == 0 and '1 of 1 rows repeat' in v.stdout, v.stdout[-3000:] + v.stderr[-3000:]
    assert (tmp_path / 'shared.db').read_bytes() == db     # the re-run sweeps in its own folder, not in the storage under test


@pytest.mark.parametrize('args,msg', [(['--storage', 'sweeps.db'], "storage='sweeps.db' is not a database URL"),
                                      (['--storage', 'sqlite:////no/such/folder/s.db'], 'cannot be opened'),
                                      (['--set', 'wd=[-1, 0.1]'], '[-1] are not valid'),
                                      (['--set', 'wd=[]'], 'non-empty list'),
                                      (['--set', 'wd=[0, "nan"]'], 'not valid')])
def test_bad_sweeps_refused_before_training(tmp_path, capsys, args, msg):
    from ltr_nb.cli import main
    with pytest.raises(SystemExit) as e: main([_suite(tmp_path), '--device', 'cpu', '--out', str(tmp_path / 'o'), *args])
    assert e.value.code == 2 and msg in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()                               # nothing written
