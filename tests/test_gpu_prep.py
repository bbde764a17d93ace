"""What a bare GPU machine is handed (issue 23): the LT subset of cifar10-jpeg packed by scripts/pack_lt_subset.py reproduces
the full zip's long-tailed split (same training, validation and test images) when its recipe pins n_max."""
import subprocess, sys
from pathlib import Path
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'scripts'))


def test_subset_reproduces_the_lt_split(tmp_path):
    from ltr_nb.core import real_data_root
    from ltr_nb.data import lt_dataset, img_num_per_cls
    from pack_lt_subset import subset_members, NAME
    r = real_data_root(NAME)
    if r is None: pytest.skip('cifar10-jpeg.zip is not under the data root')
    # the recipe scripts/gpu_check.sh reads: the ResNet-32 suite's split (n_max 4950, 50 validation images per class)
    p = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'pack_lt_subset.py'), '--data_root', str(r), '--out', str(tmp_path),
                        '--n_max', '4950', '--val_per_class', '50'], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / NAME).stat().st_size <= 24 * 2**20 and 'n_max=4950' in p.stdout
    full, n_max = subset_members(r / NAME, 100, 4950, 50)
    sub, _ = subset_members(tmp_path / NAME, 100, 4950, 50)
    assert sub == full
    assert subset_members(r / NAME, 100, None, 20)[1] == 4980                # the full pool's default n_max (20 held out): pinned above
    d = lt_dataset('cifar10-jpeg', imb_factor=100, n_max=n_max, val_per_class=50, root=tmp_path)
    assert d.info['cls_counts'] == [int(c) for c in img_num_per_cls(n_max, 10, 100)]
    assert np.bincount(d.y_val.numpy()).tolist() == [50] * 10 and len(d.y_test) == 10_000


def test_subset_refuses_what_would_not_fit(tmp_path):
    from ltr_nb.core import real_data_root
    r = real_data_root('cifar10-jpeg.zip')
    if r is None: pytest.skip('cifar10-jpeg.zip is not under the data root')
    p = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'pack_lt_subset.py'), '--data_root', str(r), '--out', str(tmp_path / 'o'),
                        '--imb_factor', '1'], capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and 'over --max_mb' in p.stderr and not (tmp_path / 'o' / 'cifar10-jpeg.zip').exists()


def test_wheels_resolve_for_the_gpu_machine(tmp_path):
    "Every requirement of ltr_nb, fastai, nbdev, execnb and optuna (CPython 3.12 on Linux x86-64) is on the GPU image, skipped with a reason, or a wheel at its constraints.txt pin; the set installs offline into a target folder as gpu_check.sh does."
    w = tmp_path / 'whl'
    p = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'gpu_wheels.py'), '--dest', str(w)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    names = sorted(x.name for x in w.glob('*.whl'))
    for n in ('fastai-2.8.7', 'fastcore-1.14.5', 'fastprogress-', 'nbdev-2.4.14', 'execnb-0.1.18', 'ipython-', 'optuna-', 'ltr_nb-'):
        assert any(x.startswith(n) for x in names), (n, names)
    assert not any(x.startswith(('torch-', 'torchvision-', 'numpy-', 'spacy-')) for x in names), names     # left to the image
    assert sum(x.stat().st_size for x in w.glob('*.whl')) < 24 * 2**20                                        # fits beside the data
    i = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--only-binary=:all:', '--python-version', '3.12',
                        '--target', str(tmp_path / 'site'), *map(str, w.glob('*.whl'))], capture_output=True, text=True, timeout=300)
    assert i.returncode == 0, i.stderr
    for pkg in ('fastai', 'fastcore', 'nbdev', 'execnb', 'IPython', 'optuna', 'sqlalchemy', 'ltr_nb'): assert (tmp_path / 'site' / pkg).is_dir(), pkg
