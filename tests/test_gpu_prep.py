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
    p = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'pack_lt_subset.py'), '--data_root', str(r), '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / NAME).stat().st_size <= 24 * 2**20 and 'n_max=4980' in p.stdout
    full, n_max = subset_members(r / NAME, 100, None, 20)                 # the full pool's default n_max
    sub, _ = subset_members(tmp_path / NAME, 100, n_max, 20)              # the subset read with it pinned
    assert n_max == 4980 and sub == full
    d = lt_dataset('cifar10-jpeg', imb_factor=100, n_max=n_max, root=tmp_path)
    assert d.info['cls_counts'] == [int(c) for c in img_num_per_cls(n_max, 10, 100)]
    assert np.bincount(d.y_val.numpy()).tolist() == [20] * 10 and len(d.y_test) == 10_000


def test_subset_refuses_what_would_not_fit(tmp_path):
    from ltr_nb.core import real_data_root
    r = real_data_root('cifar10-jpeg.zip')
    if r is None: pytest.skip('cifar10-jpeg.zip is not under the data root')
    p = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'pack_lt_subset.py'), '--data_root', str(r), '--out', str(tmp_path / 'o'),
                        '--imb_factor', '1'], capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and 'over --max_mb' in p.stderr and not (tmp_path / 'o' / 'cifar10-jpeg.zip').exists()
