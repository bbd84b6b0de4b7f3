"""Fixtures for processor tests: a folder served over HTTP on 127.0.0.1 (what yt-dlp downloads
from, offline), and the API fixtures for tests that run a processor through the API and a real
worker.
"""

import functools
import http.server
import pathlib
import threading

import pytest

# Shared with the API tests: a test client, and member and admin keys of two accounts.
from tests.api.conftest import client, keys  # noqa: F401


class FileServer:
    """Serves the files of one folder on 127.0.0.1 and records the paths asked for."""

    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self.paths: list[str] = []
        handler = functools.partial(_QuietHandler, self, directory=str(folder))
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, name: str) -> str:
        """Return the URL of a file in the folder."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{name}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, server_record: FileServer, *args, **kwargs):
        self.record = server_record
        super().__init__(*args, **kwargs)

    def send_head(self):
        self.record.paths.append(self.path)
        return super().send_head()

    def log_message(self, *args) -> None:
        pass  # keep pytest's output clean


@pytest.fixture(scope="module")
def media_site(tmp_path_factory):
    """An empty folder served over HTTP on 127.0.0.1 for the module; stopped at its end."""
    server = FileServer(tmp_path_factory.mktemp("site"))
    server.start()
    yield server
    server.stop()
