"""The stage notebook as a researcher meets it: JupyterLab in a real browser (Playwright driving Debian's Chromium).

It prepares a tiny dataset, parameterises `nbs/train_stage.ipynb` for a short quick stage (papermill --prepare-only),
opens it in JupyterLab, clicks Run > Run All Cells and watches the page while it trains. It fails when a widget
fails to render, when the page logs an error, when a cell ends in a traceback, when a dashboard panel was never
drawn while the stage trained (each panel's widget carries the class `kd-panel-<name>`), or when a final view is
shown smaller than its own size (which shrinks its text) in a 1,100 px window with the file browser open. Screenshots, taken while it
trains and at the end, go to the folder it prints. `make browser-check` runs it; it is not part of `make test`.
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


def start_lab(work: Path, port: int, token: str) -> subprocess.Popen:
    cmd = [str(BIN/'jupyter'), 'lab', '--no-browser', f'--port={port}', '--ip=127.0.0.1', f'--ServerApp.root_dir={work}',
           f'--IdentityProvider.token={token}', '--ServerApp.disable_check_xsrf=True', '--allow-root']
    log = open(work/'jupyterlab.log', 'w')
    return subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


# What the page shows, read in one evaluation: the cells' prompts, the panels drawn, widget errors and tracebacks.
PAGE_STATE = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
  const drawn = [...document.querySelectorAll('[class*="kd-panel-"]')]
    .filter(el => (el.tagName === 'IMG' ? [el] : [...el.querySelectorAll('img')])
      .some(img => img.naturalWidth > 0 && img.offsetParent !== null))
    .map(el => [...el.classList].find(c => c.startsWith('kd-panel-')).slice('kd-panel-'.length));
  const text = document.body.innerText;
  const tracebacks = [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(o => o.innerText).filter(t => t.includes('Traceback') || /Error:/.test(t));
  return {prompts, drawn, text_errors: %s.filter(e => text.includes(e)), tracebacks};
}""" % json.dumps(WIDGET_ERRORS)


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
    port, token = free_port(), secrets.token_hex(16)
    lab = start_lab(work, port, token)
    console_errors = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(), args=['--no-sandbox'])
            page = browser.new_page(viewport={'width': 1100, 'height': 1000})
            page.on('console', lambda m: m.type == 'error' and console_errors.append(m.text))
            page.on('pageerror', lambda e: console_errors.append(str(e)))
            url = f'http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}'
            for _ in range(120):  # the server takes a few seconds to listen
                try: page.goto(url); break
                except Exception: time.sleep(1)
            page.wait_for_selector('.jp-Notebook .jp-CodeCell', timeout=120_000)
            try:  # JupyterLab asks which kernel to start for a notebook it has not opened before: the notebook's own
                page.click('.jp-Dialog .jp-mod-accept', timeout=15_000)
            except Exception: pass
            page.wait_for_selector('.jp-Toolbar-kernelName:has-text("kd_nb")', timeout=120_000)
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
            page.click('.lm-MenuBar-itemLabel:text-is("Run")')
            page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
            state = watch(page, args.timeout, shots)
            # the final views, as the page shows them: each image's drawn width against its own (a scale under 1 shrinks its text)
            final = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output img.jp-mod-unconfined')]
                .filter(img => img.naturalWidth > 0).map(img => [img.naturalWidth, Math.round(img.getBoundingClientRect().width)])""")
            images = page.locator('.jp-OutputArea-output img')
            for i in range(min(images.count(), 6)):
                images.nth(i).scroll_into_view_if_needed(); page.screenshot(path=str(shots/f'final-{i}.png'))
            browser.close()
    finally:
        os.killpg(lab.pid, 15)
    # Console errors from JupyterLab itself that are not the notebook's (a missing favicon, say) would show here too:
    # none were seen on JupyterLab 4.6, so every one fails the check.
    missing = [name for name in args.panels.split(',') if name not in state['seen']]
    report = dict(seconds=state['seconds'], panels_first_drawn_s=state['seen'], missing_panels=missing,
                  final_views_width_own_shown=final,
                  widget_errors=state['text_errors'], tracebacks=[t[-800:] for t in state['tracebacks']],
                  console_errors=console_errors, timed_out=state.get('timed_out', False), screenshots=str(shots))
    print(json.dumps(report, indent=1))
    # the fit's final views, each at its own size: the text the figures draw at 10 px or more stays so in a narrow window
    shrunk = len(final) < len(args.panels.split(',')) or any(shown < own for own, shown in final)
    failed = missing or shrunk or state['text_errors'] or state['tracebacks'] or console_errors or report['timed_out']
    if failed: sys.exit('browser_check: FAILED (see above)')
    print(f'browser_check: passed: every panel drawn while the stage trained, its final views at their own size, '
          f'no widget or page errors ({work})')


if __name__ == '__main__': main()
