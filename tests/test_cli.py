"""Tests that are better outside a notebook: the installed console script and fresh interpreters."""
import json, os, subprocess, sys, sysconfig
from pathlib import Path
import pytest

BIN = Path(sysconfig.get_path('scripts'))


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)


def test_import_in_fresh_interpreter():
    "import ltr_nb makes torchvision (models, transforms.v2) and fastai.vision importable on this torch build."
    r = run([sys.executable, '-c', 'import ltr_nb, torchvision.models, torchvision.transforms.v2, fastai.vision.all; '
             'from ltr_nb.sampling import sampling_probs; from ltr_nb.train import train_joint; print("ok")'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == 'ok'


@pytest.mark.parametrize('args,msg', [
    (['--dataset', 'imagenet'], "dataset='imagenet' is unknown"),
    (['--samplers', 'ib,balanced'], "sampler='balanced' is unknown"),
    (['--imb_factor', '0.5'], 'imb_factor=0.5 must be >= 1'),
    (['--arch', 'vit'], "arch='vit' is unknown"),
    (['--dataset', 'fashion-mnist', '--data_root', '{tmp}/empty'], "missing ['train-images-idx3-ubyte.gz'"),
])
def test_bad_input_writes_nothing(tmp_path, args, msg):
    out = tmp_path / 'out'
    r = run([str(BIN / 'ltr_nb'), *[a.format(tmp=tmp_path) for a in args], '--out', str(out)])
    assert r.returncode != 0
    assert msg in r.stderr and 'ltr_nb: error:' in r.stderr and 'Traceback' not in r.stderr
    assert not out.exists()


def test_main_job_short_run(tmp_path):
    "The console script end to end (2 samplers, 1 seed, 3 epochs): table printed, results and plots written."
    out = tmp_path / 'digits'
    r = run([str(BIN / 'ltr_nb'), '--samplers', 'ib,cb', '--seeds', '0', '--epochs', '3', '--out', str(out)])
    assert r.returncode == 0, r.stderr
    assert '| joint / cb |' in r.stdout and 'Many (1 cls)' in r.stdout
    rec = json.loads((out / 'results.json').read_text())
    assert rec['data']['cls_counts'] == [114, 88, 68, 52, 40, 31, 24, 19, 14, 11]
    assert rec['env']['torch'] and rec['seeds'] == [0]
    for f in ('table.md', 'per_class_acc.png', 'weight_norms.png', 'norm_history.png'):
        assert (out / f).stat().st_size > 0
