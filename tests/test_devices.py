"""Device behaviour that a CPU can show (issue 23): every loader resolves its default device by one rule, and cuDNN's
deterministic mode is switched on for a fit only, never left on for the rest of the process. What only a GPU can show is in
nbs/tutorials/07_on_a_gpu.ipynb (`#| cuda` cells, run by scripts/gpu_check.sh)."""
import pytest
import torch
from fastai.callback.core import Callback
from ltr_nb.core import pick_device
from ltr_nb.data import lt_dataset
from ltr_nb.loaders import lt_dls
from ltr_nb.listfile import write_list_files, list_file_dls
from ltr_nb.train import TrainConfig, lt_learner, fit_lt
from ltr_nb.heads import crt, HeadConfig


@pytest.fixture(scope='module')
def digits(): return lt_dataset('digits')


@pytest.fixture
def cuda_present(monkeypatch):
    "This CPU build made to say a GPU is there: code that then puts data on the GPU fails with torch's 'no CUDA' error."
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)


def test_default_device_is_one_rule(digits, tmp_path, cuda_present):
    "With a GPU present, in-memory and list-file loaders both take it when no device is given (in-memory ones used to stay on the CPU)."
    assert pick_device() == torch.device('cuda', 0) and pick_device('cpu') == torch.device('cpu')
    write_list_files(digits, tmp_path)
    for make in (lambda: lt_dls(digits), lambda: list_file_dls(tmp_path, 'train.txt', 'val.txt', size=8, check_files=False)):
        with pytest.raises((AssertionError, RuntimeError), match='CUDA|accelerator'): make()      # both went for the GPU
    assert lt_dls(digits, device='cpu').device == torch.device('cpu')                  # an explicit device is kept


def test_default_device_without_a_gpu(digits, tmp_path):
    write_list_files(digits, tmp_path)
    lf = list_file_dls(tmp_path, 'train.txt', 'val.txt', size=8, check_files=False)
    assert lt_dls(digits).device == lf.device == pick_device() == torch.device('cpu')


class _Seen(Callback):
    def __init__(self): self.flags = []
    def before_epoch(self): self.flags.append((torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark))


class _Boom(Callback):
    def after_batch(self): raise RuntimeError('boom')


@pytest.fixture
def user_flags():
    "The user's own cuDNN settings (autotuning on), put back after the test."
    c = torch.backends.cudnn; saved = c.deterministic, c.benchmark
    c.deterministic, c.benchmark = False, True
    yield (False, True)
    c.deterministic, c.benchmark = saved


def _flags(): return torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark


def test_deterministic_only_during_the_fit(digits, tmp_path, user_flags):
    "Joint training and a head's training run with cuDNN deterministic (no autotuning); the user's settings are back after each, also after an error."
    seen = _Seen()
    learn = lt_learner(digits, TrainConfig(epochs=1, bs=128), path=tmp_path, quiet=True, device='cpu', cbs=[seen])
    assert _flags() == user_flags                       # building the learner changes nothing
    fit_lt(learn)
    assert seen.flags == [(True, False)] and _flags() == user_flags
    crt(learn.model, digits, cfg=HeadConfig(epochs=1))
    assert _flags() == user_flags
    bad = lt_learner(digits, TrainConfig(epochs=1, bs=128), path=tmp_path, quiet=True, device='cpu', cbs=[_Boom()])
    with pytest.raises(RuntimeError, match='boom'): fit_lt(bad)
    assert _flags() == user_flags


def test_results_on_the_inputs_device():
    "Cached-feature predictions come back on the features' device ('meta' stands in for a GPU: it carries devices, not data; the rest is in nbs/tutorials/07_on_a_gpu.ipynb)."
    from ltr_nb.heads import tau_norm_linear
    from ltr_nb.evaluate import predict_features
    head, f = torch.nn.Linear(8, 3).to('meta'), torch.empty(10, 8, device='meta')
    assert predict_features(head, f).device.type == 'meta' and predict_features(head, f[:0]).device.type == 'meta'
    assert tau_norm_linear(head, 1.).weight.device.type == 'meta'
