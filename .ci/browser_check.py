"""The stage notebook as a researcher meets it: JupyterLab in a real browser (Playwright driving Debian's Chromium).

It prepares a tiny dataset, parameterises `nbs/train_stage.ipynb` for a short quick stage (papermill --prepare-only),
opens it in JupyterLab, clicks Run > Run All Cells and watches the page while it trains. It fails when a widget
fails to render, when the page logs an error, when a cell ends in a traceback, when a dashboard panel was never
drawn while the stage trained (each panel's widget carries the class `kd-panel-<name>`), or when a final panel is
shown smaller than its own size (which shrinks its text) in a 1,100 px window with the file browser open. Then, as a
researcher comes back to a finished run: it saves the notebook, shuts its kernel down and reloads the page (the final
panels must still show, with no widget errors), and runs `nbs/analysis.ipynb` over the stage's run (the results table
and the report must render: HTML tables, the report's figures as images, no raw Markdown, no traceback). Screenshots,
taken while it trains and at the end, go to the folder it prints. `make browser-check` runs it; it is not part of
`make test`.
"""
import argparse, json, os, secrets, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WIDGET_ERRORS = ('Error displaying widget', 'Error rendering', 'Failed to load model', 'Could not render')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def chromium() -> str:
    path = shutil.which('chromium') or shutil.which('chromium-browser')
    if path is None:
        sys.exit("browser_check: Chromium is missing: install Debian's package (apt-get install chromium).")
    return path


def stage_notebook(work: Path, arch: str, epochs: int) -> Path:
    "A tiny prepared dataset and the stage notebook parameterised for it, in `work`."
    from kd_nb.testing import tiny_dataset
    data = tiny_dataset(work/'data', counts=(96, 32, 32), image_size=32)
    out = work/'stage.ipynb'
    params = dict(arch=arch, dataset='tinyset', preset='quick', epochs=epochs, batch_size=16,
                  data_root=str(data), experiments_root=str(work/'experiments'))
    cmd = [str(BIN/'papermill'), '--prepare-only', str(ROOT/'nbs'/'train_stage.ipynb'), str(out), '-k', 'kd_nb']
    for k, v in params.items(): cmd += ['-p', k, str(v)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    nb = json.loads(out.read_text())  # --prepare-only leaves the kernel as it was: the project's, as kd_pipeline runs it
    nb['metadata']['kernelspec'] = dict(name='kd_nb', display_name='Python (kd_nb)', language='python')
    out.write_text(json.dumps(nb))
    return out


def analysis_notebook(work: Path) -> Path:
    "`nbs/analysis.ipynb` parameterised to read the stage's run folder and write its report in `work`."
    out = work/'analysis.ipynb'
    cmd = [str(BIN/'papermill'), '--prepare-only', str(ROOT/'nbs'/'analysis.ipynb'), str(out), '-k', 'kd_nb',
           '-p', 'experiments_root', str(work/'experiments'), '-p', 'figures_root', str(work/'figures')]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    nb = json.loads(out.read_text())
    nb['metadata']['kernelspec'] = dict(name='kd_nb', display_name='Python (kd_nb)', language='python')
    out.write_text(json.dumps(nb))
    return out


def start_lab(work: Path, port: int, token: str) -> subprocess.Popen:
    cmd = [str(BIN/'jupyter'), 'lab', '--no-browser', f'--port={port}', '--ip=127.0.0.1', f'--ServerApp.root_dir={work}',
           f'--IdentityProvider.token={token}', '--ServerApp.disable_check_xsrf=True', '--allow-root',
           f'--LabApp.workspaces_dir={work/"workspaces"}']  # its own: a workspace saved by an earlier check reopens its tabs
    log = open(work/'jupyterlab.log', 'w')
    return subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


# What the page shows, read in one evaluation: the cells' prompts, the panels drawn, widget errors and tracebacks.
ACTIVE = '.jp-NotebookPanel:not(.lm-mod-hidden)'  # the notebook in the open tab (another tab's stays in the page, hidden)
PAGE_STATE = """() => {
  const root = document.querySelector('%s') || document;
  const prompts = [...root.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
  const drawn = [...root.querySelectorAll('[class*="kd-panel-"]')]
    .filter(el => (el.tagName === 'IMG' ? [el] : [...el.querySelectorAll('img')])
      .some(img => img.naturalWidth > 0 && img.offsetParent !== null))
    .map(el => [...el.classList].find(c => c.startsWith('kd-panel-')).slice('kd-panel-'.length));
  const text = document.body.innerText;
  const tracebacks = [...root.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(o => o.innerText).filter(t => t.includes('Traceback') || /Error:/.test(t));
  return {prompts, drawn, text_errors: %s.filter(e => text.includes(e)), tracebacks};
}""" % (ACTIVE, json.dumps(WIDGET_ERRORS))


def watch(page, timeout_s: float, shots: Path) -> dict:
    "Poll the page until every code cell has run; return the panels seen drawn and what went wrong."
    seen, start, last_shot, state = {}, time.monotonic(), 0., {}
    while time.monotonic() - start < timeout_s:
        state = page.evaluate(PAGE_STATE)
        running = any(p in ('[*]:', '[ ]:', '') for p in state['prompts'])
        if running:  # drawn while a cell still runs: live, not only the final picture
            for name in state['drawn']: seen.setdefault(name, round(time.monotonic() - start, 1))
        if time.monotonic() - last_shot > 10:
            panel = page.locator('[class*="kd-panel-"]')
            if panel.count(): panel.first.scroll_into_view_if_needed()
            page.screenshot(path=str(shots/f'running-{int(time.monotonic() - start):04d}s.png'), full_page=True)
            last_shot = time.monotonic()
        if state['prompts'] and not running or state['tracebacks']: break
        time.sleep(0.5)
    else: state['timed_out'] = True
    return dict(state, seen=seen, seconds=round(time.monotonic() - start, 1))


def open_notebook(page, url: str):
    "Open a notebook in JupyterLab and wait for its kernel (the notebook's own, kd_nb) to be idle."
    for _ in range(120):  # the server takes a few seconds to listen
        try: page.goto(url); break
        except Exception: time.sleep(1)
    page.wait_for_selector(f'{ACTIVE} .jp-CodeCell', timeout=120_000)
    try:  # JupyterLab asks which kernel to start for a notebook it has not opened before: the notebook's own
        page.click('.jp-Dialog .jp-mod-accept', timeout=15_000)
    except Exception: pass
    page.wait_for_selector(f'{ACTIVE} .jp-Toolbar-kernelName:has-text("kd_nb")', timeout=120_000)
    page.wait_for_selector(f'{ACTIVE} .jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)


def menu(page, *labels: str):
    "Click through the menu bar, e.g. `menu(page, 'Run', 'Run All Cells')`."
    page.click(f'.lm-MenuBar-itemLabel:text-is("{labels[0]}")')
    for label in labels[1:]: page.click(f'.lm-Menu-itemLabel:text-is("{label}")')


# The final panels as the page shows them: each image's own width and its drawn width (a scale under 1 shrinks its text)
FINAL_PANELS = """() => [...(document.querySelector('%s') || document).querySelectorAll('.jp-OutputArea-output img.jp-mod-unconfined')]
    .filter(img => img.naturalWidth > 0).map(img => [img.naturalWidth, Math.round(img.getBoundingClientRect().width)])""" % ACTIVE


def saved_and_reloaded(page, notebook: Path, n_panels: int) -> dict:
    "Save the notebook, shut its kernel down, reload the page: what a researcher finds when coming back to the run."
    page.keyboard.press('Control+s')
    for _ in range(60):  # the file on disk holds the final panels once the save went through
        outputs = [o for cell in json.loads(notebook.read_text())['cells'] for o in cell.get('outputs', [])]
        saved = [o for o in outputs if ''.join(o.get('data', {}).get('text/plain', '')) == 'a panel of the dashboard']
        if len(saved) >= n_panels: break
        time.sleep(1)
    menu(page, 'Kernel', 'Shut Down Kernel')
    page.wait_for_timeout(2000)
    page.reload()
    page.wait_for_selector(f'{ACTIVE} .jp-CodeCell', timeout=120_000)
    page.wait_for_timeout(3000)  # images and any widget placeholders render
    text = page.evaluate('() => document.body.innerText')
    return dict(saved_panels=len(saved), reloaded_panels=len(page.evaluate(FINAL_PANELS)),
                reload_widget_errors=[e for e in WIDGET_ERRORS if e in text])


# What the analysis notebook rendered: HTML tables, images with their pixels, raw Markdown left as text.
ANALYSIS_STATE = """() => {
  const outputs = [...(document.querySelector('%s') || document).querySelectorAll('.jp-OutputArea-output')];
  return {tables: outputs.reduce((n, o) => n + o.querySelectorAll('table').length, 0),
          images: outputs.reduce((n, o) => n + [...o.querySelectorAll('img')].filter(i => i.naturalWidth > 0).length, 0),
          raw_markdown: outputs.filter(o => o.querySelector('pre') && /\|---|!\[/.test(o.querySelector('pre').innerText)).length};
}""" % ACTIVE


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--arch', default='cnn', choices=('cnn', 'vit'))
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--timeout', type=float, default=600, help='seconds for the whole Run All')
    p.add_argument('--panels', default='curves,maps,gradients,confusion', help='panels that must be drawn while it trains')
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright
    work = Path(tempfile.mkdtemp(prefix='kd_nb-browser-'))
    shots = work/'screenshots'; shots.mkdir()
    notebook = stage_notebook(work, args.arch, args.epochs)
    analysis = analysis_notebook(work)  # beside it from the start, as in nbs/
    port, token = free_port(), secrets.token_hex(16)
    lab = start_lab(work, port, token)
    console_errors = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(), args=['--no-sandbox'])
            page = browser.new_page(viewport={'width': 1100, 'height': 1000})
            page.on('console', lambda m: m.type == 'error' and console_errors.append(m.text))
            page.on('pageerror', lambda e: console_errors.append(str(e)))
            page.on('response', lambda r: r.status >= 400 and console_errors.append(f'{r.status} {r.url}'))
            open_notebook(page, f'http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}')
            menu(page, 'Run', 'Run All Cells')
            state = watch(page, args.timeout, shots)
            final = page.evaluate(FINAL_PANELS)
            images = page.locator('.jp-OutputArea-output img')
            for i in range(min(images.count(), 6)):
                images.nth(i).scroll_into_view_if_needed(); page.screenshot(path=str(shots/f'final-{i}.png'))
            n_panels = len(args.panels.split(','))
            reloaded = saved_and_reloaded(page, work/notebook.name, n_panels) if not state['tracebacks'] else {}
            page.screenshot(path=str(shots/'reloaded.png'), full_page=True)
            analysed = {}
            if reloaded:  # a fresh page, and `reset`: a workspace with the analysis notebook alone
                page.close()
                page = browser.new_page(viewport={'width': 1100, 'height': 1000})
                page.on('console', lambda m: m.type == 'error' and console_errors.append(m.text))
                page.on('pageerror', lambda e: console_errors.append(str(e)))
                page.on('response', lambda r: r.status >= 400 and console_errors.append(f'{r.status} {r.url}'))
                open_notebook(page, f'http://127.0.0.1:{port}/lab/tree/{analysis.name}?reset&token={token}')
                menu(page, 'Run', 'Run All Cells')
                ran = watch(page, args.timeout, shots)
                analysed = dict(page.evaluate(ANALYSIS_STATE), tracebacks=[t[-800:] for t in ran['tracebacks']],
                                widget_errors=ran['text_errors'], timed_out=ran.get('timed_out', False))
                page.screenshot(path=str(shots/'analysis.png'), full_page=True)
            browser.close()
    finally:
        os.killpg(lab.pid, 15)
    # Console errors from JupyterLab itself that are not the notebook's (a missing favicon, say) would show here too:
    # none were seen on JupyterLab 4.6, so every one fails the check.
    missing = [name for name in args.panels.split(',') if name not in state['seen']]
    report = dict(seconds=state['seconds'], panels_first_drawn_s=state['seen'], missing_panels=missing,
                  final_panels_width_own_shown=final,
                  widget_errors=state['text_errors'], tracebacks=[t[-800:] for t in state['tracebacks']],
                  console_errors=console_errors, timed_out=state.get('timed_out', False), reloaded=reloaded,
                  analysis=analysed, screenshots=str(shots))
    print(json.dumps(report, indent=1))
    # the fit's final panels, each at its own size: the text the figures draw at 10 px or more stays so in a narrow window
    shrunk = len(final) < n_panels or any(shown < own for own, shown in final)
    # coming back: the saved notebook shows the same final panels without its kernel, and no widget error
    lost = not reloaded or reloaded['saved_panels'] < n_panels or reloaded['reloaded_panels'] < n_panels or reloaded['reload_widget_errors']
    # the analysis: the results table and the report's tables rendered as HTML, its figures as images, no raw Markdown
    unread = (not analysed or analysed['tables'] < 2 or analysed['images'] < 1 or analysed['raw_markdown']
              or analysed['tracebacks'] or analysed['widget_errors'] or analysed['timed_out'])
    failed = missing or shrunk or lost or unread or state['text_errors'] or state['tracebacks'] or console_errors or report['timed_out']
    if failed: sys.exit('browser_check: FAILED (see above)')
    print(f'browser_check: passed: every panel drawn while the stage trained, its final panels at their own size and '
          f'still there after a save, kernel shutdown and reload; analysis.ipynb rendered its tables and figures; '
          f'no widget or page errors ({work})')


if __name__ == '__main__': main()
