"""End-to-end: ``streamlit run app.py`` driven by Debian's Chromium through Playwright.

Asks a question, waits for the streamed answer and a citation, opens it, answers one practice
question, takes screenshots into the test's tmp folder and prints the measured latencies. Set
``STUDYRAG_UPDATE_SCREENSHOTS=1`` to refresh the README screenshots under ``docs/`` and the
committed ``evals/reports/app-latency.json`` (a normal test run leaves the repository alone).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from openai_stub import OpenAIStub  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LATENCY_REPORT = REPO / "evals" / "reports" / "app-latency.json"
# Read at import: the autouse fixture clears STUDYRAG_* variables before each test.
UPDATE_SCREENSHOTS = bool(os.environ.get("STUDYRAG_UPDATE_SCREENSHOTS"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} is missing (apt-get install -y chromium; CI does)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(log: Path, corpus_settings, **studyrag_env: str):
    """``streamlit run app.py`` on a free localhost port over the session's index of the
    bundled notes; ``studyrag_env`` adds or overrides STUDYRAG_* variables."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDYRAG_")}
    env.update({"STUDYRAG_HOME": str(corpus_settings.home),
                "STUDYRAG_STORAGE__NOTES_DIR": str(corpus_settings.storage.notes_dir),
                "STUDYRAG_ANSWER__BACKEND": "extractive", "PYTHONUNBUFFERED": "1", **studyrag_env})
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.fileWatcherType", "none"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(corpus_settings, tmp_path_factory):
    """The app with extractive answers."""
    with running_app(tmp_path_factory.mktemp("streamlit") / "server.log", corpus_settings) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_app(browser, url: str, path: str = ""):
    """A new browser context (= a new Streamlit session); returns (page, load seconds)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1050},
                                  device_scale_factor=1)
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"{url}/{path}")
    page.get_by_test_id("stSidebar").wait_for(timeout=90_000)
    page.locator("h1").first.wait_for(timeout=90_000)
    return page, time.perf_counter() - started


ASSISTANT_TEXT = """() => {
  const msgs = [...document.querySelectorAll('[data-testid="stChatMessage"]')]
    .filter(m => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]'));
  const last = msgs[msgs.length - 1];
  if (!last) return false;
  const md = last.querySelector('[data-testid="stMarkdownContainer"]');
  return !!md && md.innerText.trim().length > 0;
}"""


def test_chat_and_practice_in_a_real_browser(server, browser, tmp_path):
    timings: dict[str, float] = {}
    # Cold: the server's first session (imports; model and index load in the background).
    # It asks one question, so the server is warm like one a student has been using.
    page, timings["first_load_cold_s"] = open_app(browser, server)
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=90_000)
    box.fill("What is Amazon S3?")
    sent = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(ASSISTANT_TEXT, polling=25, timeout=120_000)
    timings["ttft_cold_s"] = time.perf_counter() - sent
    page.context.close()
    # Warm: a new browser session on the running server — what a student sees.
    page, timings["first_load_warm_s"] = open_app(browser, server)
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=30_000)
    timings["first_load_warm_chat_input_s"] = timings["first_load_warm_s"]

    box.fill("What is a cluster placement group?")
    sent = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(ASSISTANT_TEXT, polling=25, timeout=90_000)
    timings["ttft_s"] = time.perf_counter() - sent
    expander = page.get_by_test_id("stExpander").first
    expander.wait_for(timeout=90_000)
    timings["answer_complete_s"] = time.perf_counter() - sent
    answer = page.get_by_test_id("stChatMessage").nth(1).inner_text()
    assert "[1]" in answer and "placement group" in answer.lower()

    expander.locator("summary").click()
    mark = expander.locator("mark.sr-hl").first
    mark.wait_for(timeout=10_000)
    assert "lines" in expander.locator("summary").inner_text()
    page.wait_for_timeout(400)
    chat_png = tmp_path / "screenshot-chat.png"
    page.screenshot(path=str(chat_png))

    # Practice: one question, answered and graded.
    practice_png = tmp_path / "screenshot-practice.png"
    page.get_by_test_id("stSidebarNav").get_by_text("Practice").click()
    page.get_by_role("heading", name="Practice").wait_for(timeout=30_000)
    start = page.get_by_role("button", name="Start practice")
    start.wait_for(timeout=30_000)
    start.click()
    radio = page.get_by_test_id("stRadio").first
    radio.wait_for(timeout=120_000)
    radio.get_by_test_id("stRadioOption").first.click()
    page.get_by_role("button", name="Submit answer").click()
    verdict = page.get_by_text("Correct", exact=False).or_(
        page.get_by_text("Not quite", exact=False)).first
    verdict.wait_for(timeout=60_000)
    page.wait_for_timeout(600)
    page.screenshot(path=str(practice_png))
    page.context.close()

    for png in (chat_png, practice_png):
        assert png.stat().st_size > 20_000
    if UPDATE_SCREENSHOTS:
        for png in (chat_png, practice_png):
            shutil.copy(png, REPO / "docs" / png.name)

    report = {
        **{k: round(v, 3) for k, v in timings.items()},
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "backend": "extractive",
        "note": ("Chromium + Playwright against `streamlit run app.py` on localhost. "
                 "first_load: navigation until the page title and sidebar render; "
                 "ttft: Enter until the first streamed answer text is visible; "
                 "answer_complete: until the first citation is shown. "
                 f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs."),
        "targets": {"first_load_warm_s": 3.0, "ttft_s": 2.0},
    }
    if UPDATE_SCREENSHOTS:
        LATENCY_REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


ANSWERS_DONE = """() => [...document.querySelectorAll('[data-testid="stChatMessage"]')]
  .filter(m => m.querySelector('[data-testid="stChatMessageAvatarAssistant"]')
               && m.querySelector('[data-testid="stExpander"]')).length"""


def test_second_question_sent_while_the_first_streams_gets_both_answers(
        corpus_settings, browser, tmp_path):
    """Issue 15: a question sent while an answer streams used to drop that answer."""
    first, second = "What is Amazon S3?", "What is a cluster placement group?"
    # An OpenAI-compatible server that waits 3 s before it answers keeps the first answer
    # in flight while the second question is typed and sent.
    with OpenAIStub(delay_s=3.0) as stub, running_app(
            tmp_path / "server.log", corpus_settings, STUDYRAG_ANSWER__BACKEND="openai",
            STUDYRAG_ANSWER__OPENAI_BASE_URL=stub.base_url, STUDYRAG_ANSWER__MODEL=stub.models[0],
            STUDYRAG_ANSWER__CONDENSE_WITH_MODEL="false") as url:
        page, _ = open_app(browser, url)
        box = page.get_by_test_id("stChatInputTextArea")
        box.wait_for(timeout=90_000)
        box.fill(first)
        box.press("Enter")
        page.get_by_test_id("stChatMessage").filter(has_text=first).wait_for(timeout=30_000)
        box.fill(second)
        assert page.evaluate(ANSWERS_DONE) == 0  # the first answer is still on its way
        box.press("Enter")
        page.wait_for_function(f"() => ({ANSWERS_DONE})() >= 2", polling=100,
                               timeout=120_000)
        page.wait_for_timeout(1000)  # nothing else may arrive or vanish
        messages = [m.inner_text() for m in page.get_by_test_id("stChatMessage").all()]
        page.context.close()
    assert len(messages) == 4, messages
    assert first in messages[0] and second in messages[2]
    assert "[1]" in messages[1] and "[1]" in messages[3]
    assert "placement group" in messages[3].lower()
    assert {r["stream"] for r in stub.requests} == {True} and len(stub.requests) == 2
