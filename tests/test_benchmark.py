"""The throughput benchmark runs (a few steps; timings are never asserted: the benchmark prints ratios)."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'throughput.py'), '--smoke', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '| resnet32 |' in r.stdout and 'a/b' in r.stdout and 'channels_last' in r.stdout
    assert not list(tmp_path.iterdir())  # --smoke writes no results
