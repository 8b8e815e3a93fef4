"""`make gpu-check`: everything kd_nb claims about GPUs, in one run on a machine with one.

Runs with what a GPU image carries (torch, torchvision, timm, numpy, pandas, matplotlib, seaborn, scikit-learn,
safetensors, pyyaml, tqdm, psutil, tensorboard) and without nbdev, papermill or medmnist; fastcore (for the
notebooks' test cells) and ipywidgets + IPython (for the live dashboard's benchmark) travel as wheels, which
`make gpu-prepare` downloads into .whl/ (this script installs them into a side folder) beside a copy of the
CIFAR-10 data in .gpu-data/.

    python3 .ci/gpu_check.py [--data DIR] [--out DIR] [--only chains,cuda,bench] [--epochs 5]

Prints one JSON object per line, a figure or a check each ({"figure": ..., ...} / {"check": ..., "ok": ...}),
and exits non-zero if a check failed. With --out, the same lines go to gpu_check.jsonl there, and the chains'
summaries beside it. On a CPU (`--device cpu --tiny`) it checks its own machinery in a minute.
"""
import argparse, contextlib, io, json, os, subprocess, sys, tempfile, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # kd_nb from this checkout, installed or not
FAILED, JSONL = [], None  # JSONL: --out's gpu_check.jsonl, written line by line so a run cut short keeps its figures
DEADLINE = float('inf')  # perf_counter() by which the run must end (--minutes): what does not fit is skipped and said


def time_left(): return DEADLINE - time.perf_counter()


def fits(name, seconds):
    "Whether a part expected to take `seconds` fits the time left; if not, say it was skipped."
    if time_left() >= seconds: return True
    emit(check=name, skipped=True, reason=f'about {seconds:.0f} s needed, {max(time_left(), 0):.0f} s left of --minutes')
    return False


def emit(**record):
    "Print one JSON line, and append it to gpu_check.jsonl with --out."
    line = json.dumps(record, default=str)
    print(line, flush=True)
    if JSONL is not None:
        with open(JSONL, 'a') as f: f.write(line + '\n')
    if record.get('ok') is False: FAILED.append(record.get('check'))


def carried_wheels():
    "Install the wheels `make gpu-prepare` put in .whl/ into a side folder and import from there (nothing else is touched)."
    wheels = sorted(map(str, (ROOT/'.whl').glob('*.whl')))
    if not wheels: return
    site = Path(tempfile.gettempdir())/'kd_nb_gpu_site'
    if not site.is_dir():
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile',
                        '--target', str(site), *wheels], check=True)
    sys.path.insert(1, str(site))
    os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [str(site), os.environ.get('PYTHONPATH')]))


def environment(device):
    import torch, timm, torchvision
    gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else None
    emit(check='environment', ok=True, device=str(device), gpu=gpu, torch=torch.__version__, cuda=torch.version.cuda,
         timm=timm.__version__, torchvision=torchvision.__version__, python=sys.version.split()[0],
         missing=[m for m in ('nbdev', 'papermill', 'medmnist', 'ipywidgets', 'IPython', 'fastcore') if not _importable(m)])


def _importable(name):
    import importlib.util
    try: return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError): return False  # ValueError: blocked (None in sys.modules)


def tiny_set(root):
    "A generated set of 128 images of 16 px, prepared under `root`: the machinery, in seconds on a CPU."
    from kd_nb.data import synthetic_npz, prepare
    prepare('tinyset', root, source=synthetic_npz(root/'tiny.npz', 'multi-class', 4, (128, 32, 32), image_size=16, channels=3),
            verbose=False)
    return 'tinyset'


def chains(device, data, epochs, tiny, out, root):
    "Both chains with both baselines through run_stage on the CIFAR-10 copy, then a 30-epoch ResNet-50 stage's overhead."
    from kd_nb.experiment import run_stage, RUNS
    common = dict(dataset='cifar10', preset='quick', epochs=epochs, live=False, source=str(data),
                  data_root=str(root/'data'), experiments_root=str(root/'experiments'), device=device)
    if tiny: common |= dict(dataset=tiny, batch_size=32, latency_batches=[1])
    for arch in ('cnn', 'vit'):
        for run in RUNS:
            start = time.perf_counter()
            try: summary = run_stage(arch=arch, stage=run, **common)
            except Exception as e:
                emit(check=f'stage {arch}/{run}', ok=False, error=f'{type(e).__name__}: {e}', trace=traceback.format_exc()[-2000:])
                continue
            wall = time.perf_counter() - start
            images = summary['epochs'] * _train_images(summary)
            emit(check=f'stage {arch}/{run}', ok=True, model=summary['model'], epochs=summary['epochs'],
                 test_acc=summary['test']['acc'], wall_s=wall, epochs_s=summary['train_time_s'],
                 img_s=images / wall, timings_s=summary.get('timings_s'), amp=summary['config']['amp'],
                 gpu_peak_mb=_last_row(summary).get('gpu_peak_mb'))
            if out: (out/f'summary_{arch}_{run}.json').write_text(json.dumps(summary, indent=1, default=str))
    # the goal's stage: ResNet-50, 30 epochs, the time outside its epochs against its wall time
    overhead_epochs = 2 if tiny else 30
    start = time.perf_counter()
    from kd_nb.bench import callback_times, largest
    try:
        with callback_times() as events:  # where the fit's time outside the epochs goes, callback by callback
            summary = run_stage(arch='cnn', stage='teacher', overwrite=True, **(common | dict(epochs=overhead_epochs)))
    except Exception as e:
        return emit(check='stage overhead', ok=False, error=f'{type(e).__name__}: {e}', trace=traceback.format_exc()[-2000:])
    wall = time.perf_counter() - start
    emit(figure='stage_overhead', value=1 - summary['train_time_s'] / wall, wall_s=wall, epochs_s=summary['train_time_s'],
         epochs=overhead_epochs, model=summary['model'], timings_s=summary.get('timings_s'),
         largest_callbacks_s=largest(events, 12), goal='<= 0.10')


def compiled(device, data, tiny, root):
    "A stage with compile='step' (CUDA graphs on a GPU) against the same stage eager: both train, and how fast."
    from kd_nb.experiment import run_stage
    common = dict(arch='cnn', stage='student_no_kd', dataset='cifar10', preset='quick', epochs=3, live=False, source=str(data),
                  data_root=str(root/'data'), device=device, overwrite=True)
    if tiny: common |= dict(dataset=tiny, batch_size=32, latency_batches=[1], epochs=1)
    for compile_setting in (False, 'step'):
        if not fits(f'stage compile={compile_setting}', 90): continue
        start = time.perf_counter()
        try: summary = run_stage(compile=compile_setting, experiments_root=str(root/f'compiled_{compile_setting}'), **common)
        except Exception as e:
            emit(check=f'stage compile={compile_setting}', ok=False, error=f'{type(e).__name__}: {e}', trace=traceback.format_exc()[-2000:])
            continue
        rows = [float(r['samples_per_s']) for r in _rows(summary)]
        emit(check=f'stage compile={compile_setting}', ok=True, test_acc=summary['test']['acc'], wall_s=time.perf_counter() - start,
             epochs_s=summary['train_time_s'], img_s_by_epoch=rows, grad_checkpointing=summary['config']['grad_checkpointing'],
             stem=summary['config']['stem'])


def methods(device, data, epochs, tiny, out, root):
    "Every registered method's stage on the device: the teacher-to-student run of each family, after `chains` made the teachers."
    from kd_nb.experiment import run_stage
    from kd_nb.losses import METHODS
    common = dict(dataset='cifar10', preset='quick', epochs=epochs, live=False, source=str(data),
                  data_root=str(root/'data'), experiments_root=str(root/'experiments'), device=device)
    if tiny: common |= dict(dataset=tiny, batch_size=32, latency_batches=[1])
    # KD is the chains' own student_from_teacher run, trained above (and its folder is taken)
    plan = [('cnn', m, None) for m in METHODS if m not in ('ce', 'kd') and METHODS[m].reads != 'heads']
    plan += [('vit', m, None) for m in ('at', 'crd', 'dist')] + [('vit', m, 'cnn') for m in METHODS if METHODS[m].reads == 'heads']
    for arch, method, teacher_arch in plan:
        name = f"method {arch}/{method}{f' ({teacher_arch} teacher)' if teacher_arch else ''}"
        start = time.perf_counter()
        try: summary = run_stage(arch=arch, stage='student_from_teacher', kd_method=method, teacher_arch=teacher_arch, **common)
        except Exception as e:
            emit(check=name, ok=False, error=f'{type(e).__name__}: {e}', trace=traceback.format_exc()[-2000:])
            continue
        row = _last_row(summary)
        emit(check=name, ok=True, model=summary['model'], test_acc=summary['test']['acc'], wall_s=time.perf_counter() - start,
             epochs_s=summary['train_time_s'], amp=summary['config']['amp'], gpu_peak_mb=row.get('gpu_peak_mb'),
             terms={k: v for k, v in row.items() if k.startswith('train_') and k not in ('train_acc', 'train_precision', 'train_recall', 'train_f1', 'train_auc')})


def _train_images(summary):
    sizes = json.loads((Path(summary['config']['data_root'])/summary['dataset']/'metadata.json').read_text())['counts']
    return sizes['train'] // summary['config']['batch_size'] * summary['config']['batch_size']


def _rows(summary):
    from kd_nb.experiment import StageConfig, run_dir
    from kd_nb.metrics import MetricsCSV
    return MetricsCSV(run_dir(StageConfig(**summary['config']))/'metrics.csv').rows()


def _last_row(summary):
    rows = _rows(summary)
    return rows[-1] if rows else {}


def run_notebook(path, flags=('cuda',)):
    """Run a notebook's code cells in order in one namespace, as `nbdev_test --flags cuda` would, without nbdev:
    cells marked with a flag not asked for, or `eval: false`, are skipped; `show_doc` does nothing."""
    cells = [c for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'code']
    ns, results, cwd = {'__name__': '__main__'}, [], os.getcwd()
    os.chdir(path.parent)  # where nbdev_test runs a notebook
    for i, cell in enumerate(cells):
        src = ''.join(cell['source'])
        directives = {l[3:].strip() for l in src.splitlines() if l.startswith('#| ')}
        marked = {d for d in directives if d in ('slow', 'cuda')}
        if 'eval: false' in directives or marked - set(flags) or any(d.startswith('default_exp') for d in directives): continue
        src = '\n'.join('show_doc = lambda *a, **k: None' if l.strip() == 'from nbdev.showdoc import show_doc' else
                        ('pass' if l.strip().startswith('import nbdev') else l) for l in src.splitlines())
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(src, f'{path.name} cell {i}', 'exec'), ns)
            results.append((i, 'cuda' in marked, None))
        except Exception as e: results.append((i, 'cuda' in marked, f'{type(e).__name__}: {str(e)[:300]}'))
    os.chdir(cwd)
    return results


def cuda_cells(notebooks):
    "Every `#| cuda` cell, with the cells before it, of the notebooks that have such cells."
    for name in notebooks:
        path = ROOT/'nbs'/name
        start = time.perf_counter()
        results = run_notebook(path)
        cuda = [(i, err) for i, is_cuda, err in results if is_cuda]
        others = [(i, err) for i, is_cuda, err in results if not is_cuda and err]
        emit(check=f'cuda cells {name}', ok=bool(cuda) and all(err is None for _, err in cuda), seconds=time.perf_counter() - start,
             cuda_cells=[dict(cell=i, error=err) for i, err in cuda], other_cells_run=len(results) - len(cuda),
             other_cells_failed=[dict(cell=i, error=err) for i, err in others])


def benchmarks(device, tiny, root):
    "The GPU figures: memory, loop, kd, amp, viz, progress, loader, peer (32 and 224 px)."
    from kd_nb.bench import run_benchmark
    d = str(device)
    # issue 26's figures first, at the scale users train (50,000 images), then the earlier ones; what does not fit is skipped
    plans = [('limit', dict(device=d, with_stage=True, n_train=50_000, epochs=3, batch_size=128, compile='step')),
             ('limit', dict(device=d, with_stage=True, n_train=50_000, epochs=3, batch_size=128, compile='')),
             ('peer', dict(device=d, img_size=32, epochs=3, scale=50_000)),
             ('kd', dict(device=d, batch_size=128, n_train=50_000)),
             ('amp', dict(device=d, batch_size=64, models='cnn_student,vit_student,cnn_teacher')),
             ('peer', dict(device=d, img_size=224, epochs=1, batch_size=64, scale=50_000)),
             ('memory', dict(device=d)),
             ('loop', dict(device=d, epochs=3, batch_size=128)),
             ('viz', dict(device=d, batch_size=128, epochs=3)),
             ('progress', dict(device=d, batch_size=128, epochs=3)),
             ('loader', dict(device=d)),
             ('methods', dict(device=d, family='cnn', batch_size=128)),
             ('methods', dict(device=d, family='vit', batch_size=128)),
             ('peer', dict(device=d, img_size=32, epochs=30)),
             ('peer', dict(device=d, img_size=224, epochs=3, batch_size=64))]
    if tiny:  # the machinery only
        small = dict(memory=dict(device=d), loop=dict(device=d, epochs=1, repeats=1, img_size=16, n_train=256),
                     kd=dict(device=d, views=2, repeats=1, img_size=16, n_train=256),
                     amp=dict(device=d, img_size=32, batch_size=4, min_seconds=0.05, models='cnn_student'),
                     viz=dict(device=d, img_size=16, epochs=1, repeats=1, n_train=256),
                     progress=dict(device=d, img_size=16, epochs=1, repeats=1, n_train=256),
                     loader=dict(device=d, batch_size=4, batches=2, img_size=32, workers=0, min_seconds=0),
                     methods=dict(device=d, family='vit', img_size=16, batch_size=16, n_train=64, repeats=1, data='generated'),
                     limit=dict(device=d, img_size=16, batch_size=64, epochs=2, n_train=512, with_stage=True, compile=''),
                     peer=dict(device=d, img_size=16, epochs=1, workers=0, batch_size=32, dataset=tiny, data_root=str(root/'data')))
        plans = list(dict.fromkeys((name, None) for name, _ in plans[:-1]))
        plans = [(name, small[name]) for name, _ in plans]
    elif torch.cuda.device_count() >= 2: plans.append(('ddp', dict(nproc=2, batch_size=256, epochs=3)))  # NCCL, a GPU per process
    for name, options in plans:
        if not fits(f'bench {name}', 60 if tiny else 120): continue
        if name == 'viz' and not (_importable('ipywidgets') and _importable('IPython')):
            emit(check=f'bench {name}', ok=False, error='needs ipywidgets and IPython: carry them as wheels (make gpu-prepare)')
            continue
        if name == 'memory' and device.type != 'cuda': continue
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                figures = run_benchmark(name, **options)
            emit(check=f'bench {name}', ok=True, seconds=time.perf_counter() - start, options=options, figures=figures)
        except Exception as e:
            emit(check=f'bench {name}', ok=False, options=options, error=f'{type(e).__name__}: {e}', trace=traceback.format_exc()[-2000:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', default=None, help='a cifar-10-batches-py folder; default .gpu-data/ or ../shared/data/')
    parser.add_argument('--out', default=os.environ.get('OUT'), help='folder for gpu_check.jsonl and the summaries')
    parser.add_argument('--only', default='cuda,compiled,bench,chains,methods',
                        help='comma-separated, run in this order: cuda, compiled, bench, chains, methods (needs chains)')
    parser.add_argument('--minutes', type=float, default=8., help='end within this many minutes: parts that would not fit are skipped, and said')
    parser.add_argument('--epochs', type=int, default=5, help="epochs of each chain stage")
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--tiny', action='store_true', help='tiny settings: checks the machinery, measures nothing')
    args = parser.parse_args(argv)
    carried_wheels()
    from kd_nb.core import default_device
    device = default_device(args.device)
    data = Path(args.data) if args.data else next((p for p in (ROOT/'.gpu-data'/'cifar-10-batches-py',
                                                               ROOT.parent/'shared'/'data'/'cifar-10-batches-py') if p.is_dir()), None)
    if data is None or not data.is_dir(): parser.error('no CIFAR-10 copy: pass --data, or run make gpu-prepare first.')
    os.environ['KD_SHARED_DATA'] = str(data.parent)  # the benchmarks read the same copy
    global JSONL, DEADLINE
    DEADLINE = time.perf_counter() + 60 * args.minutes
    out = Path(args.out) if args.out else None
    if out: out.mkdir(parents=True, exist_ok=True); JSONL = out/'gpu_check.jsonl'; JSONL.write_text('')
    parts, start = args.only.split(','), time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix='kd_gpu_check_'))
    environment(device)
    tiny = tiny_set(root/'data') if args.tiny else None
    if 'cuda' in parts:
        if device.type == 'cuda': cuda_cells(sorted(p.name for p in (ROOT/'nbs').glob('[0-9]*.ipynb') if '#| cuda' in p.read_text()))
        else:  # no GPU: the runner itself, on a notebook's CPU cells
            results = run_notebook(ROOT/'nbs'/'03_losses.ipynb', flags=())
            failed = [dict(cell=i, error=err) for i, _, err in results if err]
            emit(check='notebook runner (CPU cells of 03_losses)', ok=bool(results) and not failed, cells=len(results), failed=failed)
    if 'compiled' in parts: compiled(device, data, tiny, root)
    if 'bench' in parts: benchmarks(device, tiny, root)
    if 'chains' in parts and fits('chains', 240): chains(device, data, 1 if tiny else args.epochs, tiny, out, root)
    if 'methods' in parts and fits('methods', 120): methods(device, data, 1 if tiny else args.epochs, tiny, out, root)
    emit(check='gpu-check', ok=not FAILED, failed=FAILED, seconds=time.perf_counter() - start)
    return 1 if FAILED else 0


if __name__ == '__main__': sys.exit(main())
