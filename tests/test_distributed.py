"""Two processes on the CPU (gloo), launched by torchrun as a user would: shares of the epoch, weights, the report, kill and resume, bad launches."""
import json, os, socket, subprocess, sys, sysconfig
from pathlib import Path
import numpy as np
import pytest
import torch

HERE = Path(__file__).parent
TORCHRUN = str(Path(sysconfig.get_path('scripts')) / 'torchrun')
WORKER = str(HERE / 'ddp_worker.py')


def _port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def launch(out, *args, n=2, check=True):
    "torchrun with `n` processes (or plain python for n=1) of the worker; returns the completed process."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = ([TORCHRUN, '--nproc_per_node', str(n), '--master_port', str(_port())] if n > 1 else [sys.executable]) + [WORKER, str(out), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if check: assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r


def _load(out, name, ranks=(0, 1)): return [json.loads((out / f'{name}{r}.json').read_text()) for r in ranks]


@pytest.mark.parametrize('sampler', ['cb', 'pb'])
def test_shares_disjoint_union_is_the_epoch(tmp_path, sampler):
    "Per-rank positions are disjoint and cover the epoch; the union of indices is the single-process draw (class-balanced, or the progressively-balanced schedule's epoch); class-balanced within binomial bounds."
    launch(tmp_path, 'plan', '--sampler', sampler, '--bs', '22')
    p0, p1 = _load(tmp_path, 'plan')
    from ltr_nb.data import lt_dataset
    from ltr_nb.sampling import sampler_for
    dig = lt_dataset('digits'); s = sampler_for(sampler, dig.y_train, seed=0)
    union = []
    for e in ('0', '1', '2'):
        a, b = p0['idx'][e], p1['idx'][e]
        assert not set(a['pos']) & set(b['pos']) and sorted(a['pos'] + b['pos']) == list(range(p0['n']))
        assert sorted(a['idx'] + b['idx']) == sorted(s.indices(int(e)).tolist())
        union += a['idx'] + b['idx']
    if sampler == 'pb': return              # its class frequencies move with the epoch (checked in 02_sampling)
    f = np.bincount(dig.y_train.numpy()[union], minlength=10) / len(union)
    assert (np.abs(f - 0.1) <= 5 * np.sqrt(0.1 * 0.9 / len(union))).all(), f


@pytest.mark.parametrize('how', ['exit', 'raise'])
def test_group_left_at_exit(tmp_path, how):
    """A script that exits or raises without finish_distributed: the group init_distributed made is left before
    Python's teardown (left to it, gloo aborted about one exit in seven: 'terminate called without an active exception')."""
    r = launch(tmp_path, 'exit', '--how', how, check=how == 'exit')
    left = [json.loads(f.read_text()) for f in sorted(tmp_path.glob('left*.json'))]
    if how == 'exit': assert len(left) == 2
    else: assert r.returncode != 0 and 'the script failed' in r.stderr and left   # the launcher may stop the slower one
    assert left == [False] * len(left) and 'terminate called' not in r.stderr, (left, r.stderr[-2000:])


def test_weights_same_on_ranks_and_as_one_process(tmp_path):
    "After 3 epochs (about 60 steps, MaxNorm after every step): identical on both ranks; equal to one process with the same global batch."
    launch(tmp_path / 'two', 'train'); launch(tmp_path / 'one', 'train', n=1)
    w0, w1 = _load(tmp_path / 'two', 'weights'); (w,) = _load(tmp_path / 'one', 'weights', (0,))
    assert w0['world'] == 2 and w['world'] == 1
    for k in w['sd']:
        assert np.array_equal(np.array(w0['sd'][k]), np.array(w1['sd'][k])), k
        np.testing.assert_allclose(np.array(w0['sd'][k]), np.array(w['sd'][k]), atol=1e-5, err_msg=k)
    assert np.array_equal(np.array(w0['acc']), np.array(w['acc']))       # validation per class, counts summed over ranks


def test_list_file_fit_two_processes(tmp_path):
    "The streaming pipeline (images read from list files, random crops and flips) under two processes: the same weights on both ranks; together they train on as many items per epoch as one process and score every validation image once."
    from ltr_nb.data import lt_dataset
    from ltr_nb.listfile import write_list_files
    write_list_files(lt_dataset('digits'), tmp_path / 'lst')
    data = ['--data', f"list:{tmp_path / 'lst'}", '--epochs', '2']
    launch(tmp_path / 'two', 'train', *data); launch(tmp_path / 'one', 'train', *data, n=1)
    w0, w1 = _load(tmp_path / 'two', 'weights'); (w,) = _load(tmp_path / 'one', 'weights', (0,))
    for k in w['sd']: assert np.array_equal(np.array(w0['sd'][k]), np.array(w1['sd'][k])), k
    assert w0['seen'] == w['seen'] and w0['seen'][0] > 0
    assert w0['scored'] == w['scored'] == [w['n_valid']] * 2
    assert w0['acc'] == w1['acc'] and len(w0['acc']) == 2


def test_report_equals_one_process(tmp_path):
    "The Many / Medium / Few metric under two processes (each scoring its shard, counts summed) equals one process's on the same predictions."
    launch(tmp_path / 'two', 'report'); launch(tmp_path / 'one', 'report', n=1)
    r0, r1 = _load(tmp_path / 'two', 'report'); (r,) = _load(tmp_path / 'one', 'report', (0,))
    assert r0['n'] == r1['n'] == r['n'] > 0
    assert r0['per_class'] == r1['per_class'] == r['per_class'] == r['ref']['per_class']
    assert r0['few'] == r1['few'] == r['few'] == r['ref']['few'] and not np.isnan(r['few'])


def test_kill_and_resume_two_processes(tmp_path):
    "Both processes SIGKILLed after epoch 2 of 3; the same command resumes from rank 0's checkpoint and ends bit-identical to an uninterrupted run."
    launch(tmp_path / 'full', 'train')
    r = launch(tmp_path / 'k', 'train', '--kill-after', '2', check=False)
    assert r.returncode != 0 and (tmp_path / 'k' / 'run' / 'models' / 'ck.pth').is_file() and not (tmp_path / 'k' / 'weights0.json').exists()
    launch(tmp_path / 'k', 'resume')
    a, b = _load(tmp_path / 'k', 'weights'), _load(tmp_path / 'full', 'weights')
    for x, y in zip(a, b):
        for k in y['sd']: assert np.array_equal(np.array(x['sd'][k]), np.array(y['sd'][k])), k
        assert x['acc'] == y['acc']


@pytest.mark.parametrize('args,msg', [
    (['train', '--bs', '21'], 'bs=21 does not split over 2 processes'),
    (['train', '--seed-per-rank'], "seed, batch size or epoch length differs across processes (rank 0: {'seed': 0"),
    (['train', '--backend', 'nosuch'], "backend='nosuch' is not available in this torch build"),
    pytest.param(['train', '--backend', 'nccl'], "backend='nccl'", marks=pytest.mark.skipif(torch.cuda.is_available(), reason='has CUDA')),
])
def test_bad_launch_refused_on_every_rank(tmp_path, args, msg):
    "Every process reports the error (each waits for the others before exiting, so the launcher stops none early); nothing trained."
    r = launch(tmp_path, *args, check=False)
    assert r.returncode != 0
    _reported(r.stderr, 'ddp_worker', msg)
    assert not (tmp_path / 'run' / 'models').exists()


def _reported(err, prog, msg):
    lines = [l for l in err.splitlines() if l.startswith(f'{prog}: rank ')]
    for rank in (0, 1): assert any(l.startswith(f'{prog}: rank {rank}: error: ') and msg in l for l in lines), err[-3000:]


def test_bad_launch_of_the_command(tmp_path):
    "`torchrun -m ltr_nb.cli` with a backend this build lacks: both processes say so and exit 2; no output folder."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([TORCHRUN, '--nproc_per_node', '2', '--master_port', str(_port()), '-m', 'ltr_nb.cli', 'digits-lt', '--only', 'joint-ib',
                        '--device', 'cpu', '--backend', 'nosuch', '--out', str(tmp_path / 'o')], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode != 0
    _reported(r.stderr, 'ltr_nb', "backend='nosuch' is not available in this torch build")
    assert not (tmp_path / 'o').exists()


def test_main_job_under_torchrun_same_table(tmp_path):
    "The ltr_nb command under `torchrun -m ltr_nb.cli` (2 processes) writes the same table as one process; only rank 0 writes."
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    args = ['digits-lt', '--only', 'joint-ib,crt,wb', '--seeds', '0', '--epochs', '3', '--device', 'cpu']
    two = subprocess.run([TORCHRUN, '--nproc_per_node', '2', '--master_port', str(_port()), '-m', 'ltr_nb.cli', *args, '--out', str(tmp_path / 'two')],
                         capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-3000:]
    one = subprocess.run([sys.executable, '-m', 'ltr_nb.cli', *args, '--out', str(tmp_path / 'one')], capture_output=True, text=True, timeout=300, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    assert (tmp_path / 'two' / 'table.md').read_text() == (tmp_path / 'one' / 'table.md').read_text()
    assert two.stdout.count('wrote ') == 1                      # one process printed and wrote the results
    assert json.loads((tmp_path / 'two' / 'results.json').read_text())['env']['processes'] == 2
