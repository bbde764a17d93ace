#!/usr/bin/env python
"""Download the wheels a bare GPU machine needs to run ltr_nb and its notebooks, and check that they resolve.

The machine (see scripts/gpu_image_packages.txt) has torch, torchvision, numpy, pandas, matplotlib, scikit-learn, pytest,
timm and accelerate, but not fastai, fastcore, fastprogress, nbdev, execnb, IPython or optuna, and no network. Starting
from ltr_nb's own requirements (and the dev ones: nbdev, execnb), this walks every wheel's `Requires-Dist` (markers
evaluated for the target Python on Linux x86-64, no extras): a requirement the image has is left to the image, one in
SKIP is left out with its reason, every other one is downloaded at its constraints.txt pin (cp-tagged manylinux wheels for
the target Python) and walked in turn. ltr_nb itself goes in as a wheel built from this checkout. Fails, naming the
package, when a requirement is neither on the image, nor pinned, nor skipped, or a pin does not satisfy it.

    python scripts/gpu_wheels.py --dest .whl                        # for the GPU machine (Python 3.12)
    python scripts/gpu_wheels.py --dest /tmp/w --python_version 3.11.2 # the same set for a bare rehearsal here
"""
import argparse, re, subprocess, sys, zipfile
from email.parser import Parser
from pathlib import Path
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ['manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_24_x86_64', 'manylinux_2_17_x86_64',
             'manylinux2014_x86_64', 'manylinux1_x86_64', 'linux_x86_64']
SKIP = {'spacy': 'fastai.text only; ltr_nb never imports it',
        'pip': 'present wherever pip runs'}
ROOTS = ['fastai', 'fastcore', 'fastprogress', 'optuna', 'nbdev', 'execnb']


def pins() -> dict:
    "name -> version from constraints.txt."
    out = {}
    for l in (ROOT / 'constraints.txt').read_text().splitlines():
        m = re.match(r'^([A-Za-z0-9_.\-]+)==([^\s#]+)', l.strip())
        if m: out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def image() -> dict:
    "name -> version (None where the list gives none) of the GPU image's packages."
    out = {}
    for l in (ROOT / 'scripts' / 'gpu_image_packages.txt').read_text().splitlines():
        if l.strip() and not l.startswith('#'): n, _, v = l.strip().partition('=='); out[canonicalize_name(n)] = v or None
    return out


def requires(whl:Path, env:dict) -> list:
    "The wheel's requirements that apply to `env` (no extras)."
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        msg = Parser().parsestr(z.read(meta).decode())
    reqs = [Requirement(r) for r in msg.get_all('Requires-Dist') or []]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({**env, 'extra': ''})]


def download(pinned:dict, dest:Path, pyver:str) -> dict:
    "Download name -> version (one pip call, no dependencies); name -> its wheel."
    cmd = [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '--python-version', pyver,
           '--implementation', 'cp', *[a for p in PLATFORMS for a in ('--platform', p)], '-d', str(dest), *[f'{n}=={v}' for n, v in pinned.items()]]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: raise SystemExit(f"gpu_wheels: pip could not download {sorted(pinned)} for Python {pyver}:\n{r.stderr[-2000:]}")
    have = {canonicalize_name(w.name.split('-')[0]): w for w in dest.glob('*.whl')}
    missing = [n for n in pinned if n not in have]
    if missing: raise SystemExit(f"gpu_wheels: no wheel of {missing} in {dest} after the download")
    return {n: have[n] for n in pinned}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dest', default=str(ROOT / '.whl'), help='folder for the wheels (ignored by git: .whl)')
    p.add_argument('--python_version', default='3.12.3', help="the target machine's Python (the GPU image: 3.12.3)")
    a = p.parse_args(argv)
    dest = Path(a.dest); dest.mkdir(parents=True, exist_ok=True)
    full = a.python_version if a.python_version.count('.') == 2 else a.python_version + '.99'   # any micro release of it
    env = {**default_environment(), 'python_version': '.'.join(full.split('.')[:2]), 'python_full_version': full,
           'sys_platform': 'linux', 'platform_system': 'Linux', 'platform_machine': 'x86_64', 'os_name': 'posix',
           'implementation_name': 'cpython', 'platform_python_implementation': 'CPython'}
    pin, img = pins(), image()
    b = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(dest), str(ROOT)],
                       capture_output=True, text=True)
    if b.returncode: raise SystemExit(f"gpu_wheels: building ltr_nb's own wheel failed:\n{b.stderr[-2000:]}")
    own = next(dest.glob('ltr_nb-*.whl'))
    todo, seen, on_image = [Requirement(r) for r in ROOTS] + requires(own, env), {}, set()
    while todo:                                  # breadth first: one download per level of the requirement tree
        level = {}
        for r in todo:
            n = canonicalize_name(r.name)
            if n in img:
                on_image.add(n)
                if img[n] and r.specifier and not r.specifier.contains(img[n], prereleases=True):
                    raise SystemExit(f"gpu_wheels: the GPU image's {n}=={img[n]} does not satisfy {r}")
            if n in img or n in SKIP: continue
            if n not in pin: raise SystemExit(f"gpu_wheels: {r} is needed but neither on the GPU image nor pinned in constraints.txt nor in SKIP")
            if r.specifier and not r.specifier.contains(pin[n], prereleases=True):
                raise SystemExit(f"gpu_wheels: {n}=={pin[n]} (constraints.txt) does not satisfy {r}")
            if n not in seen: level[n] = pin[n]
        if not level: break
        got = download(level, dest, full); seen.update(got)
        todo = [q for w in got.values() for q in requires(w, env)]
    names = {canonicalize_name(w.name.split('-')[0]) for w in dest.glob('*.whl')}
    extra = names - set(seen) - {'ltr-nb'}
    if extra: raise SystemExit(f"gpu_wheels: {dest} holds wheels this set does not name ({sorted(extra)}); use an empty --dest")
    mb = sum(w.stat().st_size for w in dest.glob('*.whl')) / 2**20
    print(f"{len(seen) + 1} wheels for Python {a.python_version} in {dest} ({mb:.1f} MB): " + ', '.join(f'{n}=={pin[n]}' for n in sorted(seen)))
    print('left to the GPU image: ' + ' '.join(sorted(on_image)))
    print('skipped: ' + '; '.join(f'{k} ({v})' for k, v in SKIP.items()))
    return 0


if __name__ == '__main__': sys.exit(main())
