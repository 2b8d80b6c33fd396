"""Safe by default (issue 15): the app listens on loopback only and says so when it does not;
typed folder paths stay under the allowed roots; a shared Chroma server is reached through a
token-checking nginx, and a wrong or missing token is one line that writes nothing.

Everything runs for real on 127.0.0.1: ``streamlit run``, ``chroma run`` and Debian's nginx
with the configuration the README shows.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.config import Settings, StorageSettings, load_settings
from rag.errors import ChromaAuthError, ConfigError

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402
from streamlit import config as streamlit_config  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
CHROMA = Path(sys.executable).with_name("chroma")
NGINX = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""),
                                                     "/usr/sbin", "/sbin"]))
TIMEOUT = 180
NOTE = "# S3\n- S3 Glacier Deep Archive is the cheapest storage class.\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"{what} did not start:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- settings ---------------------------------------------------------------------------
def test_folder_roots_default_to_home_and_notes_dir(tmp_path):
    notes = tmp_path / "notes"
    settings = Settings(home=tmp_path / "h", storage={"notes_dir": notes})
    assert settings.storage.folder_roots == [Path.home().resolve(), notes.resolve()]


def test_allowed_roots_from_the_environment_are_split_like_path(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDYRAG_STORAGE__ALLOWED_ROOTS", f"{tmp_path / 'a'}{os.pathsep}~/b")
    assert load_settings().storage.folder_roots == [(tmp_path / "a").resolve(),
                                            (Path.home() / "b").resolve()]


def test_chroma_token_header_forms(monkeypatch):
    assert Settings().storage.chroma_headers == {}
    assert StorageSettings(chroma_token="t0k").chroma_headers == {"Authorization": "Bearer t0k"}
    assert StorageSettings(chroma_token="t0k",
                           chroma_token_header="X-Chroma-Token").chroma_headers \
        == {"X-Chroma-Token": "t0k"}
    monkeypatch.setenv("STUDYRAG_STORAGE__CHROMA_TOKEN", "two words")  # would split the header
    with pytest.raises(ConfigError, match="chroma_token") as err:
        load_settings()
    assert "\n" not in str(err.value)


# --- 1. loopback by default -------------------------------------------------------------
def listening(port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses of the LISTEN sockets on ``port``, read from /proc (no traffic)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            found.append(ipaddress.ip_address(
                b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))))
    return found


def is_loopback(address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_streamlit_run_listens_on_loopback_only(tmp_path):
    """What a user types, from any folder: no --server.address, no STREAMLIT_* variables."""
    port = free_port()
    log = tmp_path / "streamlit.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "STUDYRAG_"))}
    env.update(STUDYRAG_HOME=str(tmp_path / "home"), STUDYRAG_ANSWER__BACKEND="extractive")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
             "--server.headless", "true", "--server.port", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        addresses = listening(port)
        assert addresses, f"nothing listens on {port}"
        assert all(is_loopback(a) for a in addresses), addresses
    finally:
        stop(proc)


def app(page: str = "notes") -> AppTest:
    return AppTest.from_string(f"from rag.ui.app import main\nmain(only={page!r})",
                               default_timeout=TIMEOUT)


@pytest.fixture
def small_app(monkeypatch, tmp_path):
    """The app over a one-file notes folder, allowed to read only ``tmp_path/allowed``."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "s3.md").write_text(NOTE, encoding="utf-8")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("STUDYRAG_STORAGE__NOTES_DIR", str(notes))
    monkeypatch.setenv("STUDYRAG_ANSWER__BACKEND", "extractive")
    monkeypatch.setenv("STUDYRAG_STORAGE__ALLOWED_ROOTS", str(allowed))
    return load_settings()


def network_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "other machines" in w.value]


@pytest.mark.parametrize("address,shown", [("0.0.0.0", True), ("", True), ("::", True),
                                           ("127.0.0.1", False), ("localhost", False)])
def test_app_says_when_it_is_reachable_from_other_machines(small_app, address, shown):
    before = streamlit_config.get_option("server.address")
    streamlit_config.set_option("server.address", address or None)
    try:
        at = app().run()
    finally:
        streamlit_config.set_option("server.address", before)
    assert not at.exception
    assert bool(network_warnings(at)) is shown, [w.value for w in at.warning]


# --- 2. folder roots --------------------------------------------------------------------
def add_folder(at: AppTest, path: str) -> AppTest:
    at.text_input(key="folder_path").set_value(path)
    next(b for b in at.button if b.label == "Add and index").click()
    return at.run()


def indexed_folders(settings: Settings) -> set[str]:
    from rag.index import NoteIndex

    return set(NoteIndex(settings).folders())


def test_add_folder_only_under_the_allowed_roots(small_app, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n- The launch code is 0000.\n")
    inside = tmp_path / "allowed" / "course"
    inside.mkdir()
    (inside / "ec2.md").write_text("# EC2\n- Spot instances can be interrupted.\n")
    (tmp_path / "allowed" / "escape").symlink_to(outside, target_is_directory=True)
    at = app().run()
    assert not at.exception and not at.error
    before = indexed_folders(small_app)

    for typed in (str(outside), str(tmp_path / "allowed" / "escape"),
                  f"{tmp_path}/allowed/../outside", "/"):
        add_folder(at, typed)
        assert not at.exception
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "\n" not in errors[0], errors
        assert "outside the folders the app may read" in errors[0]
        assert str((tmp_path / "allowed").resolve()) in errors[0]  # names the allowed roots
        assert at.text_input(key="folder_path").value == typed  # what was typed is kept
        assert indexed_folders(small_app) == before  # nothing read or written

    add_folder(at, str(inside))
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Indexed" in s.value for s in at.success)
    assert indexed_folders(small_app) == before | {str(inside.resolve())}


def test_uploads_stay_in_the_data_folder(small_app, tmp_path):
    from rag.ui import resources
    from rag.ui.notes import save_uploads

    class Upload:  # the two attributes of Streamlit's UploadedFile that save_uploads reads
        def __init__(self, name: str, data: bytes):
            self.name, self._data = name, data

        def getvalue(self) -> bytes:
            return self._data

    uploads = resources.uploads_dir(small_app)
    uploads.mkdir(parents=True)
    target = tmp_path / "bashrc.md"
    target.write_text("keep me")
    (uploads / "planted.md").symlink_to(target)
    saved = save_uploads(small_app, [Upload("../../evil.md", b"# a"), Upload("..", b"# b"),
                                     Upload(".hidden.md", b"# c"), Upload("planted.md", b"# d")])
    assert [p.name for p in saved] == ["evil.md", "upload.md", "hidden.md", "planted.md"]
    assert all(p.parent == uploads and p.is_file() and not p.is_symlink() for p in saved)
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in uploads.iterdir()) == sorted(p.name for p in saved)


# --- 3. shared index behind nginx with a token ------------------------------------------
def readme_nginx_conf() -> str:
    """The nginx configuration the README shows (the test runs exactly that)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```nginx\n(.*?)```", text, re.DOTALL)
    assert found, "README.md has no ```nginx block"
    return found.group(1)


@pytest.fixture
def token_proxy(tmp_path):
    """``chroma run`` on a loopback port, nginx from the README's configuration in front."""
    if NGINX is None:
        pytest.skip("nginx is missing (apt-get install -y nginx; .ci/run does)")
    if not CHROMA.exists():
        pytest.skip("the chroma CLI is not installed")
    chroma_port, proxy_port, token = free_port(), free_port(), "test-token-4f9a1c"
    site = readme_nginx_conf()
    for placeholder in ("listen 8000;", "127.0.0.1:8001", "CHANGE-ME"):
        assert placeholder in site, placeholder
    site = (site.replace("listen 8000;", f"listen 127.0.0.1:{proxy_port};")
            .replace("127.0.0.1:8001", f"127.0.0.1:{chroma_port}")
            .replace("CHANGE-ME", token))
    ngx = tmp_path / "nginx"
    ngx.mkdir()
    (ngx / "site.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {ngx / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, workers would run as "nobody", who cannot enter pytest's private tmp folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (ngx / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {ngx / 'nginx.pid'};\nerror_log {ngx / 'error.log'};\n"
        f"daemon off;\nevents {{}}\nhttp {{\n    access_log off;\n{temp}\n"
        f"    include {ngx / 'site.conf'};\n}}\n")
    chroma_log = tmp_path / "chroma.log"
    with open(chroma_log, "w") as out:
        chroma = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(tmp_path / "chroma-data"), "--host", "127.0.0.1",
             "--port", str(chroma_port)], stdout=out, stderr=subprocess.STDOUT)
    with open(ngx / "stderr.log", "w") as out:
        nginx = subprocess.Popen([NGINX, "-p", str(ngx), "-c", str(ngx / "nginx.conf")],
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(chroma_port, chroma, "chroma run", chroma_log)
        wait_port(proxy_port, nginx, "nginx", ngx / "stderr.log")
        yield {"chroma_port": chroma_port, "proxy_port": proxy_port, "token": token}
    finally:
        stop(nginx)
        stop(chroma)


def chunks_on_server(chroma_port: int) -> dict[str, int]:
    """What the Chroma server holds, asked directly on its loopback port (behind nginx)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_port,
                                 settings=ChromaSettings(anonymized_telemetry=False))
    return {c.name: c.count() for c in client.list_collections()}


@pytest.mark.slow
def test_shared_index_behind_nginx_needs_the_token(token_proxy, tmp_path):
    from rag.chains import Tutor
    from rag.index import NoteIndex
    from rag.retrieval import HybridSearch

    def settings(name: str, **token) -> Settings:
        return Settings(home=tmp_path / name, answer={"backend": "extractive"},
                        storage={"notes_dir": CORPUS, "chroma_host": "127.0.0.1",
                                 "chroma_port": token_proxy["proxy_port"],
                                 "chroma_timeout_s": 60.0, **token})

    right = token_proxy["token"]
    wrong = [settings("none"), settings("bad", chroma_token="not-" + right),
             settings("bad-x", chroma_token=right[:-1], chroma_token_header="X-Chroma-Token")]

    def refused_everywhere() -> None:
        for bad in wrong:
            for attempt in (lambda: NoteIndex(bad).ingest(), lambda: NoteIndex(bad).count(),
                            lambda: HybridSearch(bad).retrieve("What is Amazon S3?")):
                started = time.monotonic()
                with pytest.raises(ChromaAuthError, match="token") as err:
                    attempt()
                assert "\n" not in str(err.value)
                # Refused at once, not retried until chroma_timeout_s (60 s) runs out.
                assert time.monotonic() - started < 30.0
            assert not (bad.home / "index").exists()  # no local cache either

    refused_everywhere()
    assert chunks_on_server(token_proxy["chroma_port"]) == {}  # nothing was written

    # The CLI says it in one line too.
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ingest"], cwd=REPO, capture_output=True, text=True,
        timeout=300, env={**os.environ, "STUDYRAG_HOME": str(tmp_path / "cli"),
                          "STUDYRAG_STORAGE__NOTES_DIR": str(CORPUS),
                          "STUDYRAG_STORAGE__CHROMA_HOST": "127.0.0.1",
                          "STUDYRAG_STORAGE__CHROMA_PORT": str(token_proxy["proxy_port"]),
                          "STUDYRAG_STORAGE__CHROMA_TOKEN": "wrong"})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error:") and "refused the token" in lines[0]
    assert chunks_on_server(token_proxy["chroma_port"]) == {}

    # The right token indexes (Bearer) and answers (another instance, X-Chroma-Token).
    writer = settings("writer", chroma_token=right)
    assert NoteIndex(writer).ingest().added_files == len(list(CORPUS.glob("*.md")))
    stored = chunks_on_server(token_proxy["chroma_port"])
    assert len(stored) == 1 and sum(stored.values()) > 500
    reader = settings("reader", chroma_token=right, chroma_token_header="X-Chroma-Token")
    answer = Tutor(reader, HybridSearch(reader)).ask(
        "What is the maximum execution time of a Lambda function?")
    assert not answer.abstained and answer.citations
    assert "lambda" in answer.citations[0].passage.text.lower()

    refused_everywhere()  # with data on the server: still nothing changes
    assert chunks_on_server(token_proxy["chroma_port"]) == stored
