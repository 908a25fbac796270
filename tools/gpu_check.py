# Copyright (c) mmpvg contributors. All rights reserved.
"""The GPU check: prepare its offline bundle here, run it on a GPU machine.

``prepare`` (on a machine with network, ``tools/gpu_check_prepare.sh``):
downloads into ``gpu_bundle/`` the wheels of the stack for CPython 3.12 on
manylinux x86-64 (``--no-deps``: an explicit, pinned list, torch excluded)
and the mmcv 2.1.0 sdist, within a size budget (the GPU machine receives
the working tree and this folder within 64 MiB): first mmcv, the
OpenMMLab packages, timm and their small dependencies, then the large
binary ones (numpy, Pillow, matplotlib, SciPy, OpenCV) in that order
while they fit; the rest is listed in ``gpu_bundle/SKIPPED.txt`` and must
already be on the GPU machine. They cannot all travel: OpenCV's wheel
alone is 55 MiB and SciPy's 34 MiB, and mmcv imports cv2, mmdet SciPy.
The first run's ``inventory.json`` lists what the machine has; ``prepare
--skip numpy pillow ... --overwrite`` then leaves those out to make room.

``run`` (on the GPU machine, ``tools/gpu_check.sh``; no network), every
phase timed and skipped cleanly when the time left is too short:

1. inventory: Python, torch, CUDA, GPUs, nvcc, which bundled packages the
   machine already has;
2. install: the bundled wheels the machine lacks, offline, into a folder
   of their own (``--site``, first on ``PYTHONPATH``), so that the
   machine's Python and torch stay as they are;
3. mmcv: built from the sdist with its CUDA ops for this GPU's architecture
   only (``TORCH_CUDA_ARCH_LIST``, ``MMCV_WITH_OPS=1 FORCE_CUDA=1``,
   ``MAX_JOBS``, -std=c++20 as tools/setup_env.sh); without nvcc or in too
   little time, mmcv without ops (the CUDA-op tests then skip);
4. tests: ``pytest tests/test_gpu`` (MultiScaleDeformableAttention CUDA vs
   PyTorch, AMP of every mode, the detection and segmentation demos on the
   GPU, NCCL with two GPUs);
5. benchmark: ``tools/analysis_tools/benchmark.py`` on CUDA against timm
   and mmpretrain with peak memory (fp32, then bf16 autocast).

Everything is written under ``--out`` (default ``$OUT``): ``summary.md``,
``summary.json``, each phase's log, the pytest report and the tables.

Example:
    bash tools/gpu_check_prepare.sh            # here: writes gpu_bundle/
    bash tools/gpu_check.sh                    # there: writes $OUT/
    python tools/gpu_check.py run --dry-run    # the plan, nothing run
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BUNDLE = osp.join(ROOT, 'gpu_bundle')
MMCV_SDIST = 'mmcv==2.1.0'
# Pinned as in the CPU stack (tools/setup_env.sh), torch excluded. First
# what the check cannot run without, then what mmdet/mmseg/mmengine import.
CORE = [
    'mmengine==0.10.7', 'mmpretrain==1.2.0', 'mmdet==3.3.0',
    'mmsegmentation==1.2.2', 'timm==1.0.31', 'addict==2.4.0',
    'yapf==0.43.0', 'platformdirs==4.14.8', 'termcolor==3.3.0',
    'rich==15.0.0', 'markdown-it-py==4.3.0', 'mdurl==0.1.2',
    'Pygments==2.21.0', 'packaging==26.4', 'PyYAML==6.0.4',
    'regex==2026.11.19', 'ftfy==6.3.1', 'wcwidth==0.9.4',
    'terminaltables==3.1.10', 'prettytable==3.18.0', 'einops==0.8.2',
    'mat4py==0.6.0', 'model-index==0.1.11', 'ordered-set==4.1.0',
    'Markdown==3.11.3', 'click==8.5.1', 'safetensors==0.8.0',
    'tqdm==4.70.1', 'pycocotools==2.0.11', 'shapely==2.2.0', 'six==1.17.0',
    'python-dateutil==4.0.0', 'pytz==2023.4', 'tzdata==2026.6',
    'cycler==0.12.1', 'kiwisolver==1.5.1', 'pyparsing==3.3.3',
    'contourpy==1.3.3', 'fonttools==4.68.0', 'psutil==7.2.2',
    'joblib==1.6.0', 'threadpoolctl==3.8.0',
    'pytest==9.2.0', 'pluggy==1.7.0', 'iniconfig==2.3.1', 'ninja==1.13.2',
    'setuptools==80.10.2', 'wheel==0.48.0'
]
# Large binary wheels, bundled in this order while the budget allows.
HEAVY = [
    'numpy==2.4.6', 'pillow==13.0.0', 'matplotlib==3.10.9', 'scipy==1.17.1',
    'opencv-python-headless==4.14.0.94'
]
PLATFORM_ARGS = [
    '--only-binary=:all:', '--python-version', '3.12', '--implementation',
    'cp', '--abi', 'cp312', '--platform', 'manylinux2014_x86_64',
    '--platform', 'manylinux_2_17_x86_64', '--platform',
    'manylinux_2_28_x86_64'
]
# Import name of each bundled distribution whose name differs.
IMPORT_NAMES = {
    'mmsegmentation': 'mmseg', 'PyYAML': 'yaml', 'markdown-it-py':
    'markdown_it', 'Pygments': 'pygments', 'model-index': 'modelindex',
    'ordered-set': 'ordered_set', 'python-dateutil': 'dateutil',
    'Markdown': 'markdown', 'pillow': 'PIL', 'opencv-python-headless':
    'cv2', 'scikit-learn': 'sklearn', 'fonttools': 'fontTools'
}
PHASES = ('inventory', 'install', 'mmcv', 'tests', 'benchmark')


def mib(n_bytes):
    return n_bytes / 2**20


def tree_bytes(root=ROOT):
    """Size of the tracked working tree (what travels besides the bundle)."""
    try:
        files = subprocess.run(['git', 'ls-files', '-z'], cwd=root,
                               capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum(osp.getsize(osp.join(root, f)) for f in
               files.decode().split('\0') if f and osp.isfile(
                   osp.join(root, f)))


def choose_within_budget(items, budget):
    """Keep ``(name, size)`` items in order while the total fits.

    Returns:
        tuple[list, list]: The kept and the skipped names.
    """
    kept, skipped, total = [], [], 0
    for name, size in items:
        if total + size <= budget:
            kept.append(name)
            total += size
        else:
            skipped.append(name)
    return kept, skipped


# ---------------------------------------------------------------------- #
# prepare (here)
# ---------------------------------------------------------------------- #
def _pip_download(specs, dest, extra, binary=True):
    cmd = [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
           '-d', dest] + (PLATFORM_ARGS if binary else
                          ['--no-binary', ':all:', '--no-build-isolation'])
    return subprocess.run(cmd + extra + list(specs), capture_output=True,
                          text=True)


def prepare(args):
    """Download the bundle into ``args.dest``; return its manifest."""
    budget = args.budget_mib * 2**20 - tree_bytes()
    skip = {_normalise(n) for n in args.skip}
    core, heavy = ([s for s in specs if _normalise(s.split('==')[0]) not in
                    skip] for specs in (CORE, HEAVY))
    plan = dict(core=core, heavy=heavy, sdist=MMCV_SDIST, dest=args.dest,
                budget_mib=round(mib(budget), 1))
    if args.dry_run:
        print(json.dumps(plan, indent=1))
        return plan
    if osp.isdir(args.dest) and os.listdir(args.dest):
        if not args.overwrite:
            raise SystemExit(f'{args.dest} is not empty; pass --overwrite to '
                             'replace its contents by a new bundle.')
        shutil.rmtree(args.dest)
    os.makedirs(args.dest, exist_ok=True)
    proc = _pip_download([MMCV_SDIST], args.dest, args.pip_args,
                         binary=False)
    if proc.returncode:
        raise SystemExit(f'pip could not download the {MMCV_SDIST} sdist:\n'
                         f'{proc.stderr[-2000:]}')
    proc = _pip_download(core, args.dest, args.pip_args)
    if proc.returncode:
        raise SystemExit('pip could not download the core wheels for '
                         f'CPython 3.12 manylinux x86-64:\n'
                         f'{proc.stderr[-2000:]}')
    used = sum(osp.getsize(f) for f in glob.glob(osp.join(args.dest, '*')))
    skipped = []
    for spec in heavy:
        staging = osp.join(args.dest, '.staging')
        shutil.rmtree(staging, ignore_errors=True)
        proc = _pip_download([spec], staging, args.pip_args)
        files = glob.glob(osp.join(staging, '*'))
        size = sum(osp.getsize(f) for f in files)
        if proc.returncode or used + size > budget:
            skipped.append(f'{spec} ({mib(size):.1f} MiB)' if not
                           proc.returncode else f'{spec} (download failed)')
        else:
            for f in files:
                shutil.move(f, args.dest)
            used += size
        shutil.rmtree(staging, ignore_errors=True)
    files = sorted(f for f in os.listdir(args.dest)
                   if f.endswith(('.whl', '.tar.gz')))
    manifest = dict(files=files, bytes=used, mib=round(mib(used), 2),
                    skipped=skipped, budget_mib=plan['budget_mib'])
    with open(osp.join(args.dest, 'MANIFEST.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    with open(osp.join(args.dest, 'SKIPPED.txt'), 'w') as f:
        f.write(''.join(s + '\n' for s in skipped))
    total = used + tree_bytes()
    print(f'[gpu-bundle] {len(files)} files, {mib(used):.1f} MiB in '
          f'{args.dest}; with the working tree {mib(total):.1f} MiB '
          f'(limit 64 MiB). Not bundled (must be on the GPU machine): '
          f'{", ".join(skipped) or "none"}')
    if total >= 64 * 2**20:
        raise SystemExit(f'The bundle and the tree take {mib(total):.1f} '
                         'MiB, over the 64 MiB the GPU machine receives.')
    return manifest


# ---------------------------------------------------------------------- #
# run (on the GPU machine)
# ---------------------------------------------------------------------- #
class Clock:
    """The whole check's time budget."""

    def __init__(self, budget_s):
        self.start, self.budget = time.monotonic(), budget_s

    def left(self):
        return self.budget - (time.monotonic() - self.start)


def _run(cmd, log_path, timeout, env=None, cwd=ROOT):
    """Run ``cmd``, its output to ``log_path``; return (rc, seconds)."""
    start = time.monotonic()
    with open(log_path, 'w') as log:
        log.write('$ ' + ' '.join(cmd) + '\n')
        log.flush()
        try:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, timeout=max(timeout, 1),
                                ).returncode
        except subprocess.TimeoutExpired:
            rc = 'timeout'
        except OSError as e:  # e.g. no nvidia-smi
            log.write(f'{e}\n')
            rc = 'not found'
    return rc, round(time.monotonic() - start, 1)


def _dist_name(filename):
    """Distribution name of a wheel or sdist file name."""
    return re.split(r'-\d', osp.basename(filename), maxsplit=1)[0]


def _normalise(name):
    """PEP 503 form of a distribution name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def plan_phases(args):
    """The commands of every phase (what ``--dry-run`` prints)."""
    py = sys.executable
    arch = args.cuda_arch
    return dict(
        inventory=[py, __file__, 'inventory'],
        install=[py, '-m', 'pip', 'install', '--no-index', '--no-deps',
                 '--target', args.site, f'{args.bundle}/<missing wheels>'],
        mmcv=[f'TORCH_CUDA_ARCH_LIST={arch}', 'MMCV_WITH_OPS=1',
              'FORCE_CUDA=1', f'MAX_JOBS={args.jobs}',
              f'PYTHONPATH={args.site}', py, '-m', 'pip', 'install',
              '--no-index', '--no-deps', '--no-build-isolation', '--target',
              args.site, '<mmcv-2.1.0 sdist, -std=c++20>'],
        tests=[py, '-m', 'pytest', 'tests/test_gpu', '-v', '-rs',
               f'--junitxml={args.out}/pytest.xml'],
        benchmark=[py, 'tools/analysis_tools/benchmark.py', '--device',
                   'cuda', '--batch-size', str(args.batch_size),
                   '--repeats', '10', '--amp', 'none|bf16', '--out',
                   f'{args.out}/benchmark_*.md'])


def inventory(bundle):
    """What the machine has: versions, GPUs, nvcc, bundled dists present."""
    import importlib.metadata as md
    info = dict(python=sys.version.split()[0], executable=sys.executable)
    try:
        import torch
        info.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
                    gpus=[torch.cuda.get_device_name(i)
                          for i in range(torch.cuda.device_count())],
                    capability=(list(torch.cuda.get_device_capability(0))
                                if torch.cuda.is_available() else None))
    except ImportError as e:
        info['torch'] = f'missing: {e}'
    info['nvcc'] = shutil.which('nvcc') or (
        '/usr/local/cuda/bin/nvcc'
        if osp.exists('/usr/local/cuda/bin/nvcc') else None)
    present, missing = {}, []
    for f in sorted(glob.glob(osp.join(bundle, '*.whl'))):
        name = _dist_name(f)
        try:
            present[name] = md.version(name)
        except md.PackageNotFoundError:
            missing.append(f)
    info.update(present=present, missing_wheels=missing)
    return info


def run_check(args):
    clock = Clock(args.budget_s)
    os.makedirs(args.out, exist_ok=True)
    summary = dict(budget_s=args.budget_s, phases={})
    if args.dry_run:
        print(json.dumps(dict(plan_phases(args), budget_s=args.budget_s,
                              out=args.out), indent=1))
        return summary

    def record(name, **kw):
        kw['left_s'] = round(clock.left(), 1)
        summary['phases'][name] = kw
        print(f'[gpu-check] {name}: {kw}', flush=True)
        with open(osp.join(args.out, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=1)

    # 1. inventory
    start = time.monotonic()
    inv = inventory(args.bundle)
    with open(osp.join(args.out, 'inventory.json'), 'w') as f:
        json.dump(inv, f, indent=1)
    _run(['nvidia-smi'], osp.join(args.out, 'nvidia-smi.txt'), 30)
    record('inventory', rc=0, seconds=round(time.monotonic() - start, 1),
           gpus=inv.get('gpus'), nvcc=inv.get('nvcc'),
           torch=inv.get('torch'), torch_cuda=inv.get('torch_cuda'),
           missing=[osp.basename(w) for w in inv['missing_wheels']])
    if not inv.get('gpus'):
        record('abort', reason='torch sees no CUDA GPU')
        return summary
    arch = args.cuda_arch or '{}.{}'.format(*inv['capability'])

    # 2. install the missing bundled wheels into a folder of their own
    py = sys.executable
    target = ['--target', args.site]
    site_env = dict(os.environ, PYTHONPATH=args.site, PATH=osp.join(
        args.site, 'bin') + os.pathsep + os.environ.get('PATH', ''))
    rc, secs = 0, 0
    if inv['missing_wheels']:
        rc, secs = _run([py, '-m', 'pip', 'install', '-q', '--no-index',
                         '--no-deps'] + target + inv['missing_wheels'],
                        osp.join(args.out, 'install.log'), clock.left() - 60)
    record('install', rc=rc, seconds=secs)
    if rc != 0:
        record('abort', reason='the bundled wheels did not install; see '
               'install.log')
        return summary

    # 3. mmcv with CUDA ops for this one architecture
    env = dict(site_env, TORCH_CUDA_ARCH_LIST=arch, MAX_JOBS=str(args.jobs),
               MMCV_WITH_OPS='1', FORCE_CUDA='1')
    nvcc = inv.get('nvcc')
    if nvcc:
        env['PATH'] = osp.dirname(nvcc) + os.pathsep + env['PATH']
        env.setdefault('CUDA_HOME', osp.dirname(osp.dirname(nvcc)))
    sdists = glob.glob(osp.join(args.bundle, 'mmcv-2.1.0.tar.gz'))
    reserve = args.reserve_s
    with_ops = bool(nvcc and sdists and clock.left() - reserve > 60)
    rc, secs = 'skipped', 0
    if sdists:
        build = osp.join(args.site + '-build', 'mmcv-src')
        shutil.rmtree(build, ignore_errors=True)
        os.makedirs(build)
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(build)
        src = osp.join(build, 'mmcv-2.1.0')
        setup = osp.join(src, 'setup.py')
        with open(setup) as f:
            text = f.read().replace('-std=c++17', '-std=c++20')
        with open(setup, 'w') as f:
            f.write(text)
        pip = [py, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps',
               '--no-build-isolation'] + target + [src]
        if with_ops:
            rc, secs = _run(pip, osp.join(args.out, 'mmcv_build.log'),
                            clock.left() - reserve, env=env)
        if rc != 0:  # no nvcc, no time, or the build failed: no ops
            env_lite = dict(env, MMCV_WITH_OPS='0', FORCE_CUDA='0')
            rc2, s2 = _run(pip, osp.join(args.out, 'mmcv_lite.log'), 120,
                           env=env_lite)
            secs += s2
            with_ops = False if rc2 == 0 else with_ops
            rc = rc if rc2 != 0 else f'no ops (ops build: {rc})'
    record('mmcv', rc=rc, seconds=secs, cuda_ops=with_ops and rc == 0,
           arch=arch, nvcc=nvcc)
    env_py = dict(site_env, OMP_NUM_THREADS='4',
                  PYTHONPATH=args.site + os.pathsep + ROOT)
    rc, secs = _run([py, '-c', 'import mmcv, mmengine, mmpretrain, timm, '
                     'mmpvg; import mmdet, mmseg; print("imports ok")'],
                    osp.join(args.out, 'imports.log'), 120, env=env_py)
    record('imports', rc=rc, seconds=secs)

    # 4. the GPU tests
    if clock.left() > args.reserve_s + 30:
        rc, secs = _run([py, '-m', 'pytest', 'tests/test_gpu', '-v', '-rs',
                         '-p', 'no:cacheprovider',
                         f'--junitxml={args.out}/pytest.xml'],
                        osp.join(args.out, 'tests.log'),
                        clock.left() - args.reserve_s, env=env_py)
        with open(osp.join(args.out, 'tests.log')) as f:
            tail = [ln for ln in f.read().splitlines() if ' passed' in ln
                    or ' failed' in ln or ' skipped' in ln][-1:]
        record('tests', rc=rc, seconds=secs, result=tail)
    else:
        record('tests', rc='skipped (no time left)', seconds=0)

    # 5. the benchmark on CUDA, fp32 then bf16
    for amp in ('none', 'bf16'):
        if clock.left() < 45:
            record(f'benchmark_{amp}', rc='skipped (no time left)',
                   seconds=0)
            continue
        table = osp.join(args.out, f'benchmark_vit_{amp}.md')
        rc, secs = _run([py, 'tools/analysis_tools/benchmark.py',
                         '--device', 'cuda', '--batch-size',
                         str(args.batch_size), '--repeats', '10',
                         '--warmup', '3', '--amp', amp, '--out', table],
                        osp.join(args.out, f'benchmark_{amp}.log'),
                        clock.left() - 10, env=env_py)
        record(f'benchmark_{amp}', rc=rc, seconds=secs, table=osp.basename(
            table) if rc == 0 else None)
    summary['total_s'] = round(args.budget_s - clock.left(), 1)
    with open(osp.join(args.out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    lines = ['| phase | result | seconds |', '|---|---|---|']
    lines += [f"| {k} | {v.get('rc')} {v.get('result', '')} | "
              f"{v.get('seconds', '')} |"
              for k, v in summary['phases'].items()]
    with open(osp.join(args.out, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines) + f"\n\ntotal {summary['total_s']} s\n")
    print('\n'.join(lines))
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('prepare', help='download the bundle (here)')
    p.add_argument('--dest', default=BUNDLE)
    p.add_argument('--budget-mib', type=float, default=63.0,
                   help='bundle + tracked tree limit (default 63 MiB)')
    p.add_argument('--pip-args', nargs=argparse.REMAINDER, default=[],
                   help='passed to every pip download (last option)')
    p.add_argument('--skip', nargs='+', default=[], metavar='NAME',
                   help='distributions the GPU machine already has (see '
                   'its inventory.json): not bundled, room for others')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing bundle')
    p.add_argument('--dry-run', action='store_true')
    r = sub.add_parser('run', help='run the check (on the GPU machine)')
    r.add_argument('--out', default=os.environ.get('OUT'),
                   help='result folder (default: $OUT)')
    r.add_argument('--bundle', default=BUNDLE)
    r.add_argument('--site', default='/tmp/mmpvg-gpu-site',
                   help='folder the missing packages are installed into')
    r.add_argument('--budget-s', type=float, default=450,
                   help='whole check, seconds (default 450, under 8 min)')
    r.add_argument('--reserve-s', type=float, default=150,
                   help='time kept for tests and benchmark when building '
                   'mmcv (default 150)')
    r.add_argument('--cuda-arch', default='9.0',
                   help="TORCH_CUDA_ARCH_LIST (default 9.0, the H200's; "
                   "'' takes the GPU's)")
    r.add_argument('--jobs', type=int, default=os.cpu_count() or 16)
    r.add_argument('--batch-size', type=int, default=64)
    r.add_argument('--dry-run', action='store_true')
    sub.add_parser('inventory', help='print what this machine has')
    args = parser.parse_args(argv)
    if args.command == 'run':
        if not args.out:
            parser.error('run needs --out or $OUT (the result folder)')
        if args.budget_s < 60 or args.reserve_s < 0:
            parser.error('--budget-s must be >= 60 and --reserve-s >= 0, got '
                         f'{args.budget_s} and {args.reserve_s}')
        if args.batch_size < 1:
            parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.command == 'prepare' and args.budget_mib <= 0:
        parser.error(f'--budget-mib must be > 0, got {args.budget_mib}')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.command == 'prepare':
        return prepare(args)
    if args.command == 'inventory':
        info = inventory(BUNDLE)
        print(json.dumps(info, indent=1))
        return info
    return run_check(args)


if __name__ == '__main__':
    main()
