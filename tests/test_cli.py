"""Tests that are better outside a notebook: the installed console script, fresh interpreters, and killing a real run."""
import json, os, shlex, signal, subprocess, sys, sysconfig, time, zipfile
from pathlib import Path
import pytest
import torch

BIN = Path(sysconfig.get_path('scripts'))
LTR = str(BIN / 'ltr_nb')
SHORT = ['--only', 'joint-ib,crt', '--seeds', '0']      # two rows that share one training run


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)


def test_import_in_fresh_interpreter():
    "import ltr_nb makes torchvision (models, transforms.v2) and fastai.vision importable on this torch build."
    r = run([sys.executable, '-c', 'import ltr_nb, torchvision.models, torchvision.transforms.v2, fastai.vision.all; '
             'from ltr_nb.sampling import sampling_probs; from ltr_nb.train import train_joint; print("ok")'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == 'ok'


def _bad_zip(tmp):
    d = tmp / 'bad'; d.mkdir()
    with zipfile.ZipFile(tmp / 'ok.zip', 'w') as z: z.writestr('train/a/1.png', b'x' * 5000)
    (d / 'cifar10-jpeg.zip').write_bytes((tmp / 'ok.zip').read_bytes()[:3000])   # truncated
    return d


@pytest.mark.parametrize('args,msg', [
    (['--dataset', 'imagenet'], "dataset='imagenet' is unknown"),
    (['--only', 'joint-ib', '--set', 'sampler="balanced"'], "sampler='balanced' is unknown"),
    (['--imb_factor', '0.5'], 'imb_factor=0.5 must be a finite number >= 1'),
    (['--imb_factor', 'inf'], 'imb_factor=inf must be a finite number >= 1'),
    (['--lr', 'nan'], 'lr=nan must be a finite number > 0'),
    (['--arch', 'vit'], "arch='vit' is unknown"),
    (['--epochs', 'x'], "epochs='x' is not a valid int"),
    (['--dataset', 'fashion-mnist', '--data_root', '{tmp}/empty'], "missing ['train-images-idx3-ubyte.gz'"),
    (['--dataset', 'cifar10-jpeg', '--data_root', '{bad}'], "cannot be read (BadZipFile"),
    (['--device', 'foo'], "device='foo' is not a device"),
    pytest.param(['--device', 'cuda'], 'CUDA is not available', marks=pytest.mark.skipif(torch.cuda.is_available(), reason='has CUDA')),
    (['--val_per_class', '0'], 'val_per_class=0 must be >= 1'),
    (['--many', '10', '--few', '50'], 'must satisfy many >= few'),
    (['--seeds', '0,0'], 'seeds=[0, 0] has duplicates'),
    (['--only', 'nope'], "['nope'] are not in the suite"),
    (['--only', ' , '], "only=' , ' names nothing"),
    (['--set', 'colour=1'], "no selected experiment's method takes option 'colour'"),
    (['--only', 'joint-ib', '--set', 'tau=1'], "no selected experiment's method takes option 'tau'"),
    (['nosuch'], "suite='nosuch' is neither a shipped suite"),
    (['--dataset', 'list:{tmp}/nowhere'], "nowhere' does not exist; 'list:<folder>' names a folder"),
    (['imagenet-lt', '--imb_factor', '10'], "imb_factor=10.0 does not apply to the list-file dataset 'imagenet-lt'"),
])
def test_bad_input_writes_nothing(tmp_path, capsys, args, msg):
    "Every bad input: `ltr_nb: error:` with the argument, value and what is valid, no traceback, nothing written (the command's `main`, in process)."
    from ltr_nb.cli import main
    out = tmp_path / 'out'
    bad = _bad_zip(tmp_path) if '{bad}' in args else None
    with pytest.raises(SystemExit) as e: main([*[a.format(tmp=tmp_path, bad=bad) for a in args], '--out', str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 2, (e.value.code, err)
    assert msg in err and 'ltr_nb: error:' in err and 'Traceback' not in err, err
    assert not out.exists()


def test_output_folder_checked_first(tmp_path):
    "A file, or a folder ltr_nb did not write, is refused before training, and left as it was (also with --fresh)."
    f = tmp_path / 'file'; f.write_text('mine')
    r = run([LTR, *SHORT, '--epochs', '2', '--out', str(f)])
    assert r.returncode == 2 and 'is a file' in r.stderr and f.read_text() == 'mine'
    d = tmp_path / 'foreign'; d.mkdir(); (d / 'notes.txt').write_text('mine')
    r = run([LTR, *SHORT, '--epochs', '2', '--out', str(d), '--fresh'])
    assert r.returncode == 2 and 'ltr_nb did not write' in r.stderr and sorted(os.listdir(d)) == ['notes.txt']


def test_main_job_short_run(tmp_path):
    "The console script end to end: table printed, results, record and plots written; the recorded command replays; a changed configuration is refused, --fresh starts again."
    out = tmp_path / 'digits'
    args = ['--only', 'joint-ib,joint-cb,crt', '--seeds', '0', '--epochs', '3', '--set', 'head_epochs=2', '--out', str(out)]
    r = run([LTR, *args])
    assert r.returncode == 0, r.stderr
    assert '| joint-cb | joint / cb | 1 |' in r.stdout and 'Many > 100 / Few < 20' in r.stdout
    rec = json.loads((out / 'results.json').read_text())
    assert rec['data']['crt']['cls_counts'] == [114, 88, 68, 52, 40, 31, 24, 19, 14, 11]
    assert rec['env']['torch'] and list(rec['summary']) == ['joint-ib', 'joint-cb', 'crt']
    assert shlex.split(rec['command'])[1:] == args                    # replayable as recorded
    for f in ('table.md', 'per_class_acc.png', 'weight_norms.png', 'manifest.json'):
        assert (out / f).stat().st_size > 0
    table = (out / 'table.md').read_text()
    r = run([LTR, *args[:-2], '--epochs', '4', '--out', str(out)])      # another configuration into the same folder
    assert r.returncode == 2 and 'with another configuration' in r.stderr and (out / 'table.md').read_text() == table
    r = run([LTR, *args, '--fresh'])
    assert r.returncode == 0, r.stderr
    assert (out / 'table.md').read_text() == table                     # deterministic: the same table again


def test_diverged_run_is_reported(tmp_path):
    "lr 1e6: the run stops at the first non-finite loss, the table says diverged, results.json is strict JSON, exit status 3."
    out = tmp_path / 'o'
    r = run([LTR, *SHORT, '--epochs', '2', '--lr', '1e6', '--out', str(out)])
    assert r.returncode == 3, r.stderr
    assert '| joint-ib | joint / ib | 1 | **diverged** |' in r.stdout and 'diverged at epoch 1' in r.stdout
    assert 'experiment(s) diverged: joint-ib, crt' in r.stderr and 'Traceback' not in r.stderr
    json.loads((out / 'results.json').read_text(), parse_constant=lambda c: 1 / 0)


def _ckpt_epoch(out):
    ck = list((out / 'runs').glob('*/models/ckpt.pth')) if (out / 'runs').is_dir() else []
    try: return torch.load(ck[0], map_location='cpu', weights_only=True)['epoch'] + 1 if ck else 0
    except Exception: return 0      # being replaced right now


def _interrupt(args, out, sig, after_epochs):
    "Start `ltr_nb args`, send `sig` once its checkpoint holds `after_epochs` epochs; returns the finished process."
    p = subprocess.Popen([LTR, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while _ckpt_epoch(out) < after_epochs:
        assert p.poll() is None, f'the run ended before it could be interrupted: {p.communicate()}'
        assert time.time() - t0 < 300; time.sleep(0.02)
    p.send_signal(sig); so, se = p.communicate(timeout=120)
    assert not list((out / 'runs').glob('*/record.json')), 'the run finished before the signal: not a test of resuming'
    return p.returncode, so, se


def test_kill_and_resume_same_table(tmp_path):
    "Ctrl-C, then SIGKILL, in the middle of a real run; the same command resumes each time and ends with the table of an uninterrupted run."
    common = [*SHORT, '--epochs', '200']
    a, b = tmp_path / 'a', tmp_path / 'b'
    r = run([LTR, *common, '--out', str(a)]); assert r.returncode == 0, r.stderr
    rc, so, se = _interrupt([*common, '--out', str(b)], b, signal.SIGINT, 3)
    assert rc == 130 and 'interrupted' in se and 'run the same command to resume' in se and 'Traceback' not in se, se
    k = _ckpt_epoch(b); assert k >= 3
    rc, so, se = _interrupt([*common, '--out', str(b)], b, signal.SIGKILL, k + 5)
    assert rc == -signal.SIGKILL
    r = run([LTR, *common, '--out', str(b)]); assert r.returncode == 0, r.stderr
    assert 'resuming' in r.stdout
    assert (b / 'table.md').read_text() == (a / 'table.md').read_text()
    ra, rb = (json.loads((d / 'results' / 'crt' / 's0.json').read_text()) for d in (a, b))
    assert ra['test'] == rb['test'] and ra['valid'] == rb['valid']
    sa, sb = (torch.load(next((d / 'runs').glob('*/models/final.pth'))) for d in (a, b))
    for k_ in sa: assert torch.equal(sa[k_], sb[k_]), k_                  # bit for bit


def _fake_imagenet_lt(root, n_cls=1000):
    "A made-up ImageNet-LT in the real layout: ImageNet_LT_{train,val,test}.txt under root/imagenet-lt, 8-pixel images named by the lists."
    import numpy as np
    from PIL import Image
    d = root / 'imagenet-lt'; (d / 'train').mkdir(parents=True)
    rng = np.random.default_rng(0); lines = {'train': [], 'val': [], 'test': []}
    for c in range(n_cls):
        col = rng.integers(0, 256, 3)
        for i in range(1 + 4 * (c < 30)):                       # 30 classes with 5 images, the rest with 1 (IF 5)
            f = f'train/n{c:05d}_{i}.png'
            Image.fromarray((col + rng.integers(-20, 20, (8, 8, 3))).clip(0, 255).astype('uint8')).save(d / f)
            lines['train'].append(f'{f} {c}')
        lines['val'].append(f'train/n{c:05d}_0.png {c}'); lines['test'].append(f'train/n{c:05d}_0.png {c}')
    for k, v in lines.items(): (d / f'ImageNet_LT_{k}.txt').write_text('\n'.join(v) + '\n')
    return d


def test_imagenet_lt_suite_runs_on_list_files(tmp_path):
    "The imagenet-lt suite reads the list files under the data root and runs joint training, a head and WB end to end (tiny images, smallcnn)."
    _fake_imagenet_lt(tmp_path)
    out = tmp_path / 'out'
    args = [LTR, 'imagenet-lt', '--only', 'joint-ib,crt,wb', '--data_root', str(tmp_path), '--arch', 'smallcnn', '--size', '8',
            '--bs', '64', '--epochs', '1', '--device', 'cpu', '--out', str(out)]
    r = run(args)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / 'results.json').read_text())
    assert [v['status'] for v in res['summary'].values()] == ['done'] * 3
    assert res['data']['joint-ib']['n_cls'] == 1000 and res['data']['joint-ib']['n_train'] == 1120
    assert 'imagenet-lt IF 5: Many > 100 / Few < 20' in r.stdout and '| crt | ib + cRT | 1 |' in r.stdout, r.stdout
    assert '44.4' in (out / 'table.md').read_text()                      # Kang et al.'s number beside ours
    assert len(list((out / 'runs').iterdir())) == 1                       # WB's stage 1 (wd 5e-4) is the joint run
    bad = run([LTR, 'imagenet-lt', '--data_root', str(tmp_path / 'none'), '--out', str(tmp_path / 'o2')])
    assert bad.returncode == 2 and "needs its list files ['ImageNet_LT_train.txt'" in bad.stderr, bad.stderr
    (tmp_path / 'imagenet-lt' / 'train' / 'n00500_0.png').unlink()
    bad = run(args[:-1] + [str(tmp_path / 'o3')])
    assert bad.returncode == 2 and "ImageNet_LT_train.txt, line 621: image 'train/n00500_0.png' not found" in bad.stderr, bad.stderr
    assert not (tmp_path / 'o3').exists()
