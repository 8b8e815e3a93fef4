"""Docs pre-processing and README rendering without Quarto.

`nbdev_proc_nbs` and `nbdev_readme` both start by installing Quarto (with sudo) when it is missing, and
`nbdev_readme` then needs Quarto to turn the processed `index.ipynb` into markdown. This script runs nbdev's own
pre-processing (the part `make test` checks) and renders README.md from the processed notebook itself, the way
`quarto render -t gfm` lays it out: title and description, markdown cells as written, visible code with its text
output.

    python .ci/docs.py proc     # nbdev's docs pre-processing into _proc/
    python .ci/docs.py readme   # the same, then README.md from _proc/index.ipynb
"""
import json, sys
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


if __name__ == '__main__':
    cmds = dict(proc=proc, readme=readme)
    if len(sys.argv) != 2 or sys.argv[1] not in cmds: sys.exit(__doc__)
    cmds[sys.argv[1]]()
