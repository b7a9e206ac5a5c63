"""Try the quickstart in a real browser: JupyterLab, headless Chromium, Run > Run All Cells.

    python tools/browser_check.py [--screenshot PNG] [--timeout SECONDS]   # `make browser-check`

1. A copy of notebooks/00_quickstart.ipynb with tiny parameters injected by papermill (``--prepare-only``:
   nothing is executed there) goes into a temporary folder, as notebooks/00_quickstart.ipynb.
2. JupyterLab starts on that folder, headless, on a free port of 127.0.0.1 with a random token, with its
   settings, workspaces and runtime files in the temporary folder too (your own JupyterLab is left alone).
3. Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by selenium, the extra ``browser``)
   opens the notebook, waits for its kernel, and clicks Run > Run All Cells, as a person would.
4. It waits until the kernel is idle and every code cell has run, fails if any cell has an error output,
   and saves a screenshot (the last figure in view).

The runs of the notebook go into the temporary folder, which is removed afterwards. Exit code 0: every cell
ran without an error; 1: a cell failed or did not run; 2: no browser or a setup step failed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/00_quickstart.ipynb"
# the smoke preset's quickstart parameters: a few seconds of training, every cell still runs
TINY = {"steps": 2, "eval_prompts": 8, "eval_samples": 4}
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = ("chromedriver",)
INSTALL = "apt-get install -y chromium chromium-driver && pip install -e '.[browser]'"


class SetupError(RuntimeError):
    """A browser, a driver or the server is missing or did not start."""


def find_executable(candidates: tuple[str, ...], env: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    return next((path for name in candidates if (path := shutil.which(name))), None)


def browser_available() -> bool:
    """Whether Chromium, its driver and selenium are all installed (the slow test is skipped otherwise)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return bool(find_executable(CHROMIUM, "CHROMIUM") and find_executable(CHROMEDRIVER, "CHROMEDRIVER"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(workdir: Path, parameters: dict[str, object]) -> Path:
    """The notebook with the parameters injected (not executed), at the same relative path under workdir."""
    import papermill

    target = workdir / NOTEBOOK
    target.parent.mkdir(parents=True)
    papermill.execute_notebook(
        str(ROOT / NOTEBOOK), str(target), parameters=parameters, prepare_only=True, kernel_name="python3"
    )
    return target


def start_lab(workdir: Path, port: int, token: str, log: Path) -> subprocess.Popen:
    """JupyterLab on workdir, its state kept under workdir; returns once it answers."""
    state = workdir / ".jupyter"
    settings = state / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no "Would you like to receive official Jupyter news?" toast in the screenshot
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={workdir}",
        f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: to read the kernel's and cells' state
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines run as root
    server = subprocess.Popen(command, cwd=workdir, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SetupError(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5):
                return server
        except OSError:
            time.sleep(1)
    server.terminate()
    raise SetupError(f"JupyterLab did not answer within 120 s:\n{log.read_text()[-3000:]}")


def start_browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = find_executable(CHROMIUM, "CHROMIUM")
    driver = find_executable(CHROMEDRIVER, "CHROMEDRIVER")
    if not binary or not driver:
        raise SetupError(f"no Chromium or chromedriver on PATH: {INSTALL}")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download a browser
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root, and in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


# the state of the notebook in view, from JupyterLab's own models
STATE_JS = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext) return null;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
return {
  kernel: kernel ? kernel.status : 'none',
  code_cells: cells.length,
  executed: cells.filter(c => c.model.executionCount !== null).length,
  running: cells.filter(c => (c.node.querySelector('.jp-InputPrompt') || {textContent: ''})
    .textContent.includes('*')).length,
  errors: cells.map((c, i) => [i, c.model.outputs.toJSON().filter(o => o.output_type === 'error')])
    .filter(([i, e]) => e.length)
    .map(([i, e]) => ({cell: i, ename: e[0].ename, evalue: e[0].evalue})),
};
"""


def wait_for(driver, condition, timeout: float, what: str, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.execute_script(STATE_JS)
        if state is not None and condition(state):
            return state
        time.sleep(poll)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s (last state: {state})")


def click_menu(driver, menu: str, item: str) -> None:
    """A click on a main-menu entry, then on one of its items (as a person does it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    bar = f"//div[contains(@class, 'lm-MenuBar-itemLabel') and normalize-space(text())='{menu}']"
    wait.until(expected_conditions.element_to_be_clickable((By.XPATH, bar))).click()
    label = f"contains(@class, 'lm-Menu-itemLabel') and normalize-space(text())='{item}'"
    entry = f"//li[contains(@class, 'lm-Menu-item')][.//div[{label}]]"
    wait.until(expected_conditions.element_to_be_clickable((By.XPATH, entry))).click()


def check(
    screenshot: Path, timeout: float, width: int = 1440, height: int = 1000, keep: bool = False
) -> dict:
    """Run the quickstart in JupyterLab through Chromium; returns what happened (raises if setup fails)."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="uec-browser-check-"))
    server = driver = None
    try:
        prepare(workdir, TINY)
        port, token = free_port(), secrets.token_hex(24)
        server = start_lab(workdir, port, token, workdir / "jupyterlab.log")
        driver = start_browser(width, height)
        driver.get(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}")
        wait_for(
            driver, lambda s: s["code_cells"] > 0 and s["kernel"] == "idle", 180, "the notebook and kernel"
        )
        opened = time.monotonic()
        driver.execute_script("window.jupyterapp.commands.execute('application:toggle-left-area')")
        click_menu(driver, "Run", "Run All Cells")
        # the cells are queued at once ([*]); done when the kernel is idle and nothing is queued any more
        time.sleep(2)
        state = wait_for(
            driver,
            lambda s: (
                s["kernel"] == "idle"
                and s["running"] == 0
                and (s["errors"] or s["executed"] == s["code_cells"])
            ),
            timeout,
            "Run All Cells",
            poll=2,
        )
        ran = time.monotonic() - opened
        # the last figure in view, if there is one, else the last cell
        driver.execute_script(
            "const imgs = document.querySelectorAll('.jp-OutputArea-output img');"
            "const cells = document.querySelectorAll('.jp-Cell');"
            "const last = imgs.length ? imgs[imgs.length - 1] : cells[cells.length - 1];"
            "if (last) last.scrollIntoView({block: 'center'});"
        )
        time.sleep(1)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        return {
            **state,
            "ok": not state["errors"] and state["executed"] == state["code_cells"],
            "parameters": TINY,
            "run_all_seconds": round(ran, 1),
            "total_seconds": round(time.monotonic() - started, 1),
            "screenshot": str(screenshot),
        }
    finally:
        if driver is not None:
            driver.quit()
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "browser_check.png")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for Run All Cells (default 900)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server log, runs)")
    args = parser.parse_args(argv)
    if not browser_available():
        print(f"no browser: {INSTALL}", file=sys.stderr)
        return 2
    try:
        result = check(args.screenshot, args.timeout, keep=args.keep)
    except (SetupError, TimeoutError) as error:
        print(f"browser check failed: {error}", file=sys.stderr)
        return 2 if isinstance(error, SetupError) else 1
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
