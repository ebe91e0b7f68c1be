"""End to end: in a real browser, the rescue explorer reacts to each of its main sliders.

Serves ``notebooks/03-rescue-explorer.ipynb`` with Voila, opens it in headless
Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; Playwright never
downloads a browser here), drags one slider (dirty rate, downtime-limit or
avail-switchover-bandwidth, one page load each) and checks that both the
verdict text and the figure images change. Screenshots and Voila's log are
written to ``test-artifacts/browser/`` at the repository root.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03-rescue-explorer.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# First render: kernel start plus tk.warmup(), which compiles the numba kernels
# when their cache is cold (tens of seconds on 2 cores).
RENDER_TIMEOUT_MS = 240_000
# One slider move: the app re-simulates and redraws both figures.
UPDATE_TIMEOUT_MS = 90_000
SERVER_START_TIMEOUT_S = 60.0
VIEWPORT = {"width": 1400, "height": 1000}

_missing = [name for name in ("voila", "playwright") if importlib.util.find_spec(name) is None]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
    pytest.mark.skipif(bool(_missing),
                       reason=f"python package(s) not installed: {', '.join(_missing)}"),
]

# What the page shows right now: verdict texts, and per figure the src of its image(s).
_STATE_JS = """() => ({
  verdicts: Array.from(document.querySelectorAll('.so-explorer .so-verdict'))
                 .map(e => e.innerText.trim()),
  figures: Array.from(document.querySelectorAll('.so-explorer .so-figure'))
                .map(f => Array.from(f.querySelectorAll('img')).map(i => i.src)),
  readout: Object.fromEntries(['so-dirty-rate', 'so-downtime-limit', 'so-avail'].map(c =>
    [c, (document.querySelector('.' + c + ' .widget-readout') || {}).innerText || null])),
})"""

# True once every verdict has text and every figure shows exactly one loaded image.
_READY_JS = """() => {
  const v = Array.from(document.querySelectorAll('.so-explorer .so-verdict'));
  const f = Array.from(document.querySelectorAll('.so-explorer .so-figure'));
  if (v.length < 2 || f.length < 2) return false;
  if (!v.every(e => e.innerText.trim().length > 0)) return false;
  return f.every(fig => {
    const imgs = fig.querySelectorAll('img');
    return imgs.length === 1 && imgs[0].complete && imgs[0].naturalWidth > 0;
  });
}"""

# A Python traceback shown on the page (Voila runs with show_tracebacks), or null.
_TRACEBACK_JS = """() => {
  const e = Array.from(document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
      .find(e => e.innerText.includes('Traceback'));
  return e ? e.innerText : null;
}"""


# True once the page is ready again, at least one verdict text differs from
# ``before``, and every column whose verdict changed shows a new figure image.
_CHANGED_JS = """(before) => {
  const ready = READY;
  if (!ready()) return false;
  const v = Array.from(document.querySelectorAll('.so-explorer .so-verdict'))
                 .map(e => e.innerText.trim());
  const f = Array.from(document.querySelectorAll('.so-explorer .so-figure'))
                 .map(fig => fig.querySelector('img').src);
  if (v.length !== before.verdicts.length || f.length !== before.figures.length) return false;
  const changed = v.map((text, k) => text !== before.verdicts[k]);
  return changed.some(c => c) && changed.every((c, k) => !c || f[k] !== before.figures[k][0]);
}""".replace("READY", _READY_JS)

# Height of the tallest scrolling content (Voila's template scrolls inside a div).
_CONTENT_HEIGHT_JS = """() => Math.max(document.documentElement.scrollHeight,
  ...Array.from(document.querySelectorAll('*'))
       .filter(e => e.scrollHeight > e.clientHeight + 1 &&
                    /(auto|scroll)/.test(getComputedStyle(e).overflowY))
       .map(e => e.scrollHeight))"""


def _wait_for(page, condition_js: str, arg, timeout_ms: int, what: str) -> None:
    """Poll until ``condition_js(arg)`` is true; fail at once on a Python traceback."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        handle = page.wait_for_function(
            "([arg]) => { const tb = (TRACEBACK)(); if (tb) return {traceback: tb};"
            " return (CONDITION)(arg) ? {ok: true} : false; }"
            .replace("TRACEBACK", _TRACEBACK_JS).replace("CONDITION", condition_js),
            arg=[arg], timeout=timeout_ms, polling=250)
    except PlaywrightTimeoutError as exc:
        raise AssertionError(f"timed out after {timeout_ms / 1000:.0f} s waiting for {what}") \
            from exc
    result = handle.json_value()
    if "traceback" in result:
        raise AssertionError(f"Python traceback on the page while waiting for {what}:\n"
                             f"{result['traceback'][-3000:]}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_answers(url: str, proc: subprocess.Popen, log: pathlib.Path) -> None:
    """Poll ``url`` until the server sends any HTTP response (a 404 counts)."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"voila exited with {proc.returncode} before answering; "
                                 f"log: {log}\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"voila did not answer {url} within {SERVER_START_TIMEOUT_S:.0f} s; "
                         f"log: {log}\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM voila (it shuts its kernels down), then SIGKILL its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    # Voila runs in its own session (start_new_session): the group holds only
    # voila and the kernels it started.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=15)


def _short(state: dict) -> dict:
    """State with image srcs replaced by a hash (data: URIs are long)."""
    return {
        "verdicts": state["verdicts"],
        "figures": [[hashlib.sha256(s.encode()).hexdigest()[:12] for s in srcs]
                    for srcs in state["figures"]],
        "readout": state["readout"],
    }


def _screenshot(page, path: pathlib.Path) -> None:
    """Screenshot the whole app: grow the viewport to the scrolled content first."""
    height = page.evaluate(_CONTENT_HEIGHT_JS)
    page.set_viewport_size({"width": VIEWPORT["width"],
                            "height": int(min(max(VIEWPORT["height"], height + 40), 8000))})
    page.screenshot(path=path, full_page=True)


def _move_slider(page, readout: str, slider: str = "so-dirty-rate", mouse: bool = True) -> str:
    """Move the ``slider``'s handle to the far end of its track; return which end.

    Drags the noUiSlider handle with the mouse (with ``continuous_update=False``
    ipywidgets sends the value when the handle is released); if the readout did
    not move, focuses the handle and presses Home/End instead.
    """
    handle = page.locator(f".so-explorer .{slider} .noUi-handle").first
    track = page.locator(f".so-explorer .{slider} .noUi-base").first
    handle.scroll_into_view_if_needed()
    h = handle.bounding_box()
    t = track.bounding_box()
    assert h and t, f"{slider} slider handle or track not visible"
    x0, y0 = h["x"] + h["width"] / 2, h["y"] + h["height"] / 2
    to_right = x0 < t["x"] + t["width"] / 2
    if mouse:
        x1 = t["x"] + t["width"] + 20 if to_right else t["x"] - 20
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x1, y0, steps=15)
        page.mouse.up()
    if page.evaluate(_STATE_JS)["readout"][slider] == readout:
        handle.focus()
        page.keyboard.press("End" if to_right else "Home")
    return "max" if to_right else "min"


def explore_in_browser(notebook: pathlib.Path, artifacts: pathlib.Path,
                       slider: str = "so-dirty-rate") -> dict:
    """Serve ``notebook`` with Voila, move one slider, check the app reacts."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    artifacts.mkdir(parents=True, exist_ok=True)
    for old in ("before.png", "after.png", "failure.png", "voila.log"):
        (artifacts / old).unlink(missing_ok=True)
    shot_before, shot_after = artifacts / "before.png", artifacts / "after.png"
    shot_failure, log = artifacts / "failure.png", artifacts / "voila.log"

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel uses Jupyter's inline backend, as for a user
    env["PYTHONUNBUFFERED"] = "1"
    # the kernel imports this checkout's toolkit, not another installed copy
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "voila", "--no-browser", f"--port={port}",
           "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True", str(notebook)]
    timings: dict[str, float] = {}
    start = time.monotonic()
    with open(log, "wb") as log_file, tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.Popen(cmd, cwd=notebook.parent, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        console: list[str] = []
        before = None
        try:
            _wait_until_answers(url + "voila-test-probe", proc, log)
            timings["server"] = time.monotonic() - start
            with sync_playwright() as p:
                context = p.chromium.launch_persistent_context(
                    profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                    viewport=VIEWPORT)
                try:
                    page = context.pages[0] if context.pages else context.new_page()
                    page.on("console", lambda m: console.append(f"{m.type}: {m.text}")
                            if m.type == "error" else None)
                    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                    try:
                        page.goto(url, wait_until="commit", timeout=RENDER_TIMEOUT_MS)
                        _wait_for(page, _READY_JS, None, RENDER_TIMEOUT_MS,
                                  "the first render of the explorer")
                        timings["render"] = time.monotonic() - start
                        # Voila streams the page while it runs the cells: "load" fires once
                        # the whole notebook has run and the kernel is free for the slider.
                        page.wait_for_load_state("load", timeout=RENDER_TIMEOUT_MS)
                        timings["notebook"] = time.monotonic() - start
                        before = page.evaluate(_STATE_JS)
                        _screenshot(page, shot_before)

                        end = _move_slider(page, before["readout"][slider], slider)
                        moved = page.evaluate(_STATE_JS)["readout"][slider]
                        assert moved != before["readout"][slider], (
                            f"neither dragging the {slider} handle to its {end} nor Home/End "
                            f"moved it (readout stays {moved!r}); screenshot: {shot_before}")
                        _wait_for(page, _CHANGED_JS, before, UPDATE_TIMEOUT_MS,
                                  "the verdicts and figures to change")
                        after = _settled(page)
                        timings["update"] = time.monotonic() - start - timings["notebook"]
                        _screenshot(page, shot_after)
                    except (PlaywrightError, AssertionError) as exc:
                        try:
                            _screenshot(page, shot_failure)
                            state = _short(page.evaluate(_STATE_JS))
                        except PlaywrightError:
                            state = "unavailable"
                        raise AssertionError(
                            f"{type(exc).__name__}: {exc}\n"
                            f"page state: {state}\n"
                            f"before the slider moved: {_short(before) if before else None}\n"
                            f"screenshots: {artifacts}\n"
                            f"browser console: {console[-20:]}\nvoila log: {log}\n"
                            f"{log.read_text(errors='replace')[-3000:]}") from exc
                finally:
                    context.close()
        finally:
            _stop(proc)
    timings["total"] = time.monotonic() - start

    where = f"screenshots: before {shot_before}, after {shot_after}"
    b, a = _short(before), _short(after)
    changed = [k for k, (old, new) in enumerate(zip(b["verdicts"], a["verdicts"])) if old != new]
    assert changed, (f"no verdict changed when the {slider} slider moved to its {end} "
                     f"({b['readout'][slider]} -> {a['readout'][slider]}): {b['verdicts']}; "
                     f"{where}")
    for k in changed:
        assert a["figures"][k] != b["figures"][k], (
            f"verdict {k} changed ({b['verdicts'][k]!r} -> {a['verdicts'][k]!r}) but its "
            f"figure image did not (sha256 {b['figures'][k]}); {where}")
    return {"before": b, "after": a, "timings": timings, "end": end, "console": console}


def _settled(page, quiet_s: float = 1.0, limit_s: float = 30.0) -> dict:
    """Poll the page state until it stays the same for ``quiet_s``; return it."""
    state = page.evaluate(_STATE_JS)
    same_since = time.monotonic()
    deadline = same_since + limit_s
    while time.monotonic() < deadline:
        page.wait_for_timeout(200)
        now = page.evaluate(_STATE_JS)
        if now != state or not page.evaluate(_READY_JS):
            state, same_since = now, time.monotonic()
        elif time.monotonic() - same_since >= quiet_s:
            break
    return state


@pytest.mark.parametrize("slider", ["so-dirty-rate", "so-downtime-limit", "so-avail"])
def test_explorer_reacts_to_each_main_slider(slider):
    result = explore_in_browser(NOTEBOOK, ARTIFACTS / slider, slider)
    print(f"\nbrowser test: {result['before']['verdicts']} -> {result['after']['verdicts']} "
          f"(slider to {result['end']}); timings {result['timings']}; artifacts in {ARTIFACTS}")


# Verdicts shown and every figure a drawn ipympl canvas.
_HOVER_READY_JS = """() => {
  const v = Array.from(document.querySelectorAll('.so-explorer .so-verdict'));
  const c = Array.from(document.querySelectorAll('.so-explorer .so-figure canvas'));
  return v.length === 2 && v.every(e => e.innerText.trim().length > 0) && c.length >= 2 &&
         c.every(e => e.width > 0);
}"""
_FOOTER_JS = """() => Array.from(document.querySelectorAll(
    '.so-explorer .so-figure .jupyter-matplotlib-footer')).map(e => e.innerText.trim())"""


@pytest.mark.skipif(importlib.util.find_spec("ipympl") is None,
                    reason="python package ipympl not installed")
def test_hover_readout_appears_under_the_pointer(tmp_path):
    """explore(hover=True) in Voila: moving the pointer over a timeline writes the
    window's values into the canvas footer."""
    import nbformat
    from playwright.sync_api import sync_playwright

    notebook = tmp_path / "hover.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import toolkit as tk\ntk.explore(hover=True)")]
    nbformat.write(nb, notebook)
    artifacts = ARTIFACTS / "hover"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = artifacts / "voila.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "voila", "--no-browser", f"--port={port}",
           "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True", str(notebook)]
    with open(log, "wb") as log_file, tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            _wait_until_answers(url + "voila-test-probe", proc, log)
            with sync_playwright() as p:
                context = p.chromium.launch_persistent_context(
                    profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                    viewport=VIEWPORT)
                try:
                    page = context.pages[0] if context.pages else context.new_page()
                    page.goto(url, wait_until="commit", timeout=RENDER_TIMEOUT_MS)
                    _wait_for(page, _HOVER_READY_JS, None, RENDER_TIMEOUT_MS,
                              "the explorer's canvases")
                    page.wait_for_load_state("load", timeout=RENDER_TIMEOUT_MS)
                    canvas = page.locator(".so-explorer .so-figure canvas").last
                    canvas.scroll_into_view_if_needed()
                    box = canvas.bounding_box()
                    footers = []
                    for k in range(1, 8):          # sweep the pointer across the top panel
                        page.mouse.move(box["x"] + box["width"] * (0.15 + 0.1 * k),
                                        box["y"] + box["height"] * 0.3, steps=5)
                        page.wait_for_timeout(300)
                        footers = page.evaluate(_FOOTER_JS)
                        if any(f.startswith("t ") for f in footers):
                            break
                    _screenshot(page, artifacts / "hover.png")
                finally:
                    context.close()
        finally:
            _stop(proc)
    readouts = [f for f in footers if f.startswith("t ")]
    assert readouts and all(w in readouts[0] for w in ("pending", "threshold", "estimate")), (
        f"no read-out in the canvas footers {footers}; screenshot {artifacts / 'hover.png'}, "
        f"voila log {log}")
    print(f"\nhover read-out: {readouts[0]}")
