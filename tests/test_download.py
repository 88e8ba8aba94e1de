"""The download path, for real, against a local HTTP server on 127.0.0.1; after every failure the
cache folder holds nothing that would be trusted (no zip, no temporary file)."""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lesson5 import data, download

pytestmark = pytest.mark.network


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def payload(movielens_zip) -> bytes:
    return movielens_zip.read_bytes()


@pytest.fixture
def server(payload):
    """Serves /good.zip, /cut.zip (Content-Length says all, half arrives) and 404 elsewhere."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path in ("/good.zip", "/cut.zip"):
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload if "good" in self.path else payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def assert_nothing_trusted(folder):
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert left == [], f"the cache holds {left} after a failed download"


def test_good_download_then_cache_hit_without_network(server, tmp_path, payload):
    path = download.fetch(tmp_path, url=f"{server}/good.zip", progress=False, timeout=10)
    assert path == tmp_path / download.ZIP_NAME
    assert hashlib.sha256(path.read_bytes()).hexdigest() == download.SHA256
    # The cached copy is verified again and used: a dead URL is never contacted.
    dead = f"http://127.0.0.1:{free_port()}/good.zip"
    assert download.fetch(tmp_path, url=dead, progress=False) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == [download.ZIP_NAME]


CUT = r"could not download http://127.0.0.1:\d+/cut.zip: .*(IncompleteRead|Connection broken)"


@pytest.mark.parametrize(
    "name, sha, match",
    [
        ("good.zip", "0" * 64, "content is wrong.*by hand"),
        ("cut.zip", None, CUT),
        ("x.zip", None, "404"),
    ],
)
def test_a_wrong_hash_a_cut_response_and_a_404_leave_nothing(server, tmp_path, name, sha, match):
    with pytest.raises(data.DataError, match=match):
        url, sha = f"{server}/{name}", sha or download.SHA256
        download.fetch(tmp_path, url=url, sha256=sha, progress=False, timeout=10)
    assert_nothing_trusted(tmp_path)


def test_a_corrupt_copy_is_removed_and_a_dead_server_says_where_to_put_the_zip(server, tmp_path):
    (tmp_path / download.ZIP_NAME).write_bytes(b"truncated")
    url = f"http://127.0.0.1:{free_port()}/good.zip"
    with pytest.raises(data.DataError) as info:
        download.fetch(tmp_path, url=url, progress=False, timeout=5)
    message = str(info.value)
    assert f"could not download {url}" in message
    assert f"put it at {tmp_path / download.ZIP_NAME}" in message and "LESSON5_DATA" in message
    assert_nothing_trusted(tmp_path)  # the corrupt copy is gone, not trusted on the next call
    (tmp_path / download.ZIP_NAME).write_bytes(b"truncated")
    path = download.fetch(tmp_path, url=f"{server}/good.zip", progress=False, timeout=10)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == download.SHA256
