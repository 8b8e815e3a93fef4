"""Docs pre-processing and README rendering without Quarto.

`nbdev_proc_nbs` and `nbdev_readme` both start by installing Quarto (with sudo) when it is missing, and
`nbdev_readme` then needs Quarto to turn the processed `index.ipynb` into markdown. This script runs nbdev's own
pre-processing (the part `make test` checks) and renders README.md from the processed notebook itself, the way
`quarto render -t gfm` lays it out: title and description, markdown cells as written, visible code with its text
output.

    python .ci/docs.py proc     # nbdev's docs pre-processing into _proc/
    python .ci/docs.py readme   # the same, then README.md from _proc/index.ipynb
    python .ci/docs.py outputs [NB ...]   # run the library notebooks as nbdev_test does and keep their outputs
    python .ci/docs.py check-outputs      # every show_doc cell of the library notebooks has its output
    python .ci/docs.py check-ids          # no notebook repeats a cell id
    python .ci/docs.py shrink [NB ...]    # figures in kept outputs at most 640 px wide, PNGs in a 64-colour palette

The library notebooks are committed with the outputs of their examples, so the docs site and GitHub show what each
function does; `nbdev_clean` keeps outputs (clear_all = False) and strips only execution counts and metadata.
"""
import collections, json, os, re, sys
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import yaml
import nbdev.quarto
from nbdev.config import get_config


def proc():
    "Run nbdev's docs pre-processing (what `nbdev_proc_nbs` does) without its Quarto installer."
    nbdev.quarto._ensure_quarto = lambda: None
    cache, cfg, path = nbdev.quarto._pre_docs(n_workers=0)
    return Path(cache)


def _text(x): return ''.join(x) if isinstance(x, list) else x


def _outputs(cell):
    for out in cell.get('outputs', []):
        if out['output_type'] == 'stream': yield '```\n' + _text(out['text']).rstrip() + '\n```'
        elif 'data' in out:
            data = out['data']
            if 'text/markdown' in data: yield _text(data['text/markdown']).strip()
            elif 'text/plain' in data: yield '```\n' + _text(data['text/plain']).rstrip() + '\n```'


def render(nb_path):
    "Markdown for a processed notebook: front matter as title + description, then its cells."
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    parts = []
    for cell in nb['cells']:
        src = _text(cell['source'])
        if cell['cell_type'] == 'raw' and src.startswith('---'):
            fm = yaml.safe_load(src.strip().strip('-'))
            parts.append(f"# {fm.get('title', '')}")
            if fm.get('description'): parts.append(f"> {fm['description']}")
        elif cell['cell_type'] == 'markdown': parts.append(src.strip())
        elif cell['cell_type'] == 'code':
            lines = src.splitlines()
            directives = {l[3:].split(':')[0].strip() for l in lines if l.startswith('#| ')}
            code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if code and 'echo' not in directives: parts.append('``` python\n' + code + '\n```')
            parts.extend(_outputs(cell))
    return '\n\n'.join(p for p in parts if p) + '\n'


def readme():
    "Render README.md from the readme notebook (`readme_nb` in settings.ini)."
    cfg = get_config()
    cache = proc()
    (cfg.config_path/'README.md').write_text(render(cache/cfg.readme_nb), encoding='utf-8')


def _library_notebooks():
    "The numbered notebooks: the library, its docs and its tests."
    return sorted(get_config().nbs_path.glob('[0-9][0-9]*.ipynb'))


def _shrink(b64:str, mime:str, max_width:int=640, limit:int=40_000)->str:
    "A figure small enough to keep in git: at most `max_width` px wide, PNGs in a 64-colour palette."
    import base64, io
    from PIL import Image
    if len(b64) <= limit: return b64
    im = Image.open(io.BytesIO(base64.b64decode(b64)))
    if im.width > max_width: im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
    out = io.BytesIO()
    if mime == 'image/png': im.convert('RGB').quantize(64).save(out, 'PNG', optimize=True)
    else: im.convert('RGB').save(out, 'JPEG', quality=70, optimize=True)
    return base64.b64encode(out.getvalue()).decode()


def _shrink_outputs(cells):
    for cell in cells:
        for out in cell.get('outputs', []):
            for mime in ('image/png', 'image/jpeg'):
                if mime in out.get('data', {}):
                    data = out['data'][mime]
                    out['data'][mime] = _shrink(''.join(data) if isinstance(data, list) else data, mime)


def shrink(*names):
    "Shrink the figures kept in the library notebooks' outputs (`outputs` does it as it keeps them)."
    from execnb.nbio import read_nb, write_nb
    for fn in [Path(n) for n in names] or _library_notebooks():
        nb = read_nb(fn); _shrink_outputs(nb.cells); write_nb(nb, fn)


def _run_one(fn:Path|str)->str:
    "Execute `fn` with the cells nbdev_test would run, and write the outputs into the notebook itself."
    fn = Path(fn)
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    from fastcore.xtras import working_directory
    os.environ['IN_TEST'] = '1'  # as under nbdev_test: the dashboard draws into files, not widgets
    skip = set(get_config().tst_flags.split())
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
    # execnb leaves a cell's old outputs in place when the cell now shows nothing: start from none
    for cell in nb.cells:
        if cell.cell_type == 'code': cell.outputs = []
    def no_eval(cell):
        if cell.cell_type != 'code' or 'nbdev_export(' in cell.source: return True
        directives = getattr(cell, 'directives_', {}) or {}
        return directives.get('eval:', [''])[0].lower() == 'false' or bool(skip & directives.keys())
    with working_directory(fn.parent): CaptureShell(fn).run_all(nb, exc_stop=True, preproc=no_eval)
    raw = read_nb(fn)
    assert len(raw.cells) == len(nb.cells), fn
    for kept, ran in zip(raw.cells, nb.cells):
        if kept.cell_type == 'code': kept['outputs'] = ran.get('outputs', [])
    _shrink_outputs(raw.cells)
    write_nb(raw, fn)
    return fn.name


def outputs(*names):
    "Run the named library notebooks (default: all), one at a time as `make test` does, and keep their outputs."
    paths = [Path(n).resolve() for n in names] if names else _library_notebooks()
    # one fresh interpreter per notebook, as nbdev_test's workers: a notebook's shell takes over its process's __main__
    run = lambda p: subprocess.run([sys.executable, __file__, 'one-output', str(p)], capture_output=True, text=True)
    with ThreadPoolExecutor(1) as pool:  # torch takes every core: two notebooks side by side are slower than in turn
        failed = [(p, r.stderr[-3000:]) for p, r in zip(paths, pool.map(run, paths)) if r.returncode]
    for p, err in failed: print(f'{p.name} failed:\n{err}', file=sys.stderr)
    subprocess.run([str(Path(sys.executable).parent/'nbdev_clean')], check=True)  # execution counts and metadata go
    if failed: sys.exit(f"{len(failed)} notebook(s) failed; their outputs were not kept.")
    print(f'outputs kept: {len(paths)} notebooks')


def check_outputs():
    "Fail if a library notebook lost its outputs: every `show_doc` cell must show its documentation."
    missing = [f'{fn.name}: {src.strip()}' for fn in _library_notebooks()
               for cell in json.loads(fn.read_text(encoding='utf-8'))['cells']
               if cell['cell_type'] == 'code' and re.match(r'show_doc\(', src := _text(cell['source'])) and not cell['outputs']]
    if missing:
        sys.exit('Notebooks committed without their outputs (run `make outputs`, then commit):\n  ' + '\n  '.join(missing))


def check_ids():
    "Fail if a notebook repeats a cell id: nbformat 4.5 requires them unique, and a repeated one slips in through edits."
    repeated = []
    for fn in sorted(Path('nbs').glob('*.ipynb')):
        counts = collections.Counter(c.get('id') for c in json.loads(fn.read_text(encoding='utf-8'))['cells'])
        twice = sorted(i for i, n in counts.items() if n > 1 and i is not None)  # no id: an older format
        if twice: repeated.append(f'{fn.name}: {", ".join(twice)}')
    if repeated:
        sys.exit('Notebooks with repeated cell ids (give each repeated cell a new id, then commit):\n  ' + '\n  '.join(repeated))


if __name__ == '__main__':
    cmds = {'proc': proc, 'readme': readme, 'outputs': outputs, 'check-outputs': check_outputs, 'check-ids': check_ids,
            'one-output': _run_one, 'shrink': shrink}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds or (len(sys.argv) > 2 and sys.argv[1] not in ('outputs', 'one-output', 'shrink')):
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
