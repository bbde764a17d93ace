"""The throughput benchmark runs (a few steps; timings are never asserted: the benchmark prints ratios)."""
import subprocess, sys
import pytest, torch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'throughput.py'), '--smoke', '--device', 'cpu', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '| resnet32 |' in r.stdout and 'a/b' in r.stdout and 'channels_last' in r.stdout and 'CPU (' in r.stdout
    assert not list(tmp_path.iterdir())  # --smoke writes no results


@pytest.mark.skipif(torch.cuda.is_available(), reason='has CUDA')
def test_benchmark_names_its_device(tmp_path):
    "The benchmark trains where --device says, and refuses a device this machine lacks (it never labels CPU numbers as GPU numbers)."
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'throughput.py'), '--device', 'cuda', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "device='cuda': CUDA is not available" in r.stderr, r.stderr[-2000:]
    assert not list(tmp_path.iterdir())


def test_wb_recipe_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'wb_recipe.py'), '--smoke', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '| **total** |' in r.stdout and '| WB (stage 2) |' in r.stdout and 'stage 1 epoch 2/2' in r.stdout
    assert not list(tmp_path.iterdir())


def test_wb_recipe_bad_input(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'wb_recipe.py'), '--dataset', 'imagenet', '--out', str(tmp_path / 'o')],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "wb_recipe: error: dataset='imagenet' is unknown" in r.stderr
    assert not (tmp_path / 'o').exists()


def test_stream_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'stream.py'), '--smoke', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "(a) ltr_nb `list_file_dls`" in r.stdout and 'a/b' in r.stdout
    assert not list(tmp_path.iterdir())


def test_analysis_cost_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'analysis_cost.py'), '--smoke', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'overhead' in r.stdout and not list(tmp_path.iterdir())
