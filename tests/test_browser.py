"""The widgets in a real browser: JupyterLab + headless Chromium, slider moved by keyboard and mouse.

Skipped when Chromium or Playwright is missing, unless COURSE_REQUIRE_BROWSER=1 (CI), which
turns the skip into a failure. The server, its kernels and the browser are always stopped.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

T = 100  # timesteps of the notebook's scheduler: small, so the cell runs in a second

NOTEBOOK_CELLS = [
    "import torch\n"
    "from diffusers import DDPMScheduler\n"
    "import course_utils as cu",
    f"x0 = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1\n"
    f"w = cu.forward_process_widget(DDPMScheduler(num_train_timesteps={T}), x0)\n"
    "w",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_tree(proc: subprocess.Popen):
    """Stop the server and every process it started (kernels run in their own sessions)."""
    import psutil

    try:
        family = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=5)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the server's own group
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=5)


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free port, rooted in a temporary folder holding the test notebook."""
    nbformat = pytest.importorskip("nbformat")
    root, settings = tmp_path / "root", tmp_path / "settings"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "widgets.ipynb")
    for plugin, values in {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"),
           "HF_HUB_OFFLINE": "1"}  # the kernel imports the installed course_utils, like a learner's
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
         "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
                time.sleep(0.3)
        yield {"url": url, "token": token, "log": tmp_path / "server.log"}
    finally:
        _stop_tree(proc)
        log.close()


def test_widget_runs_live_in_jupyterlab(page, lab, tmp_path):  # browser first: a skip starts no server
    try:
        _check_widget(lab, page, tmp_path)
    except Exception:
        shot = tmp_path / "failure.png"
        page.screenshot(path=str(shot))
        outputs = page.locator(".jp-OutputArea").all_inner_texts()
        print(f"screenshot: {shot}\noutputs: {outputs}\nserver log:\n{lab['log'].read_text()[-2000:]}")
        if os.environ.get("COURSE_BROWSER_SHOTS"):
            shutil.copy(shot, os.environ["COURSE_BROWSER_SHOTS"])
        raise


def _wait_for_kernel(page, timeout: float = 60):
    """Wait until the notebook's kernel is idle. On a busy machine JupyterLab may start two
    sessions at once, lose one and ask "Select Kernel": accept its default (Python 3)."""
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    status = page.locator(".jp-StatusBar-Widget", has_text="| Idle")
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if dialog.count():
            dialog.first.click()
            quiet_since = None
        elif status.count():
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.5:
                return
        time.sleep(0.25)
    raise AssertionError("the notebook's kernel never became idle")


def _check_widget(lab, page, tmp_path):
    page.set_default_timeout(30_000)
    page.goto(f"{lab['url']}/lab/tree/widgets.ipynb?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    _wait_for_kernel(page)
    page.click("li.lm-MenuBar-item:has-text('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")

    label = page.locator(".jp-OutputArea-output .widget-label", has_text="t =")
    error = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", has_text="Error")
    deadline = time.monotonic() + 60
    while not label.count():  # fail fast, with the traceback, when a cell raises
        assert not error.count(), "a notebook cell failed:\n" + "\n".join(error.all_inner_texts())
        assert time.monotonic() < deadline, "the widget never appeared"
        time.sleep(0.2)
    image = page.locator(".jp-OutputArea-output .widget-vbox .widget-image").first
    image.wait_for()
    # JupyterLab rendered the live widget, not the static PNG strip beside it in the bundle
    assert page.locator(".jp-OutputArea-output.jp-RenderedImage").count() == 0
    assert label.inner_text().startswith("t = 0 ")

    def t_shown() -> int:
        return int(label.inner_text().split()[2])

    def wait_for_t(condition, what):
        deadline = time.monotonic() + 20
        while not condition(t_shown()):
            if time.monotonic() > deadline:
                raise AssertionError(f"slider {what}: label still says {label.inner_text()!r}")
            time.sleep(0.1)

    before = image.screenshot()
    src_before = image.get_attribute("src")
    page.screenshot(path=str(tmp_path / "jupyterlab_widget_t0.png"))

    # keyboard: focus the slider's handle and press the arrow key
    handle = page.locator(".jp-OutputArea-output .widget-slider .noUi-handle, "
                          ".jp-OutputArea-output .widget-slider .ui-slider-handle").first
    handle.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    wait_for_t(lambda t: t == 5, "moved by keyboard")
    after_keys = image.screenshot()
    assert after_keys != before
    assert image.get_attribute("src") != src_before

    # mouse: drag the handle three quarters of the way along the track
    track = page.locator(".jp-OutputArea-output .widget-slider .noUi-target, "
                         ".jp-OutputArea-output .widget-slider .ui-slider").first
    box, hbox = track.bounding_box(), handle.bounding_box()
    page.mouse.move(hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    wait_for_t(lambda t: 60 <= t <= 90, "dragged with the mouse")
    assert image.screenshot() not in (before, after_keys)
    page.screenshot(path=str(tmp_path / "jupyterlab_widget_dragged.png"))
    if os.environ.get("COURSE_BROWSER_SHOTS"):  # keep the screenshots for a human to look at
        for shot in tmp_path.glob("jupyterlab_widget_*.png"):
            shutil.copy(shot, os.environ["COURSE_BROWSER_SHOTS"])
