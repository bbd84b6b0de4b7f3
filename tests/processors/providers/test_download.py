"""The yt-dlp adapter against a real HTTP server on 127.0.0.1 serving a real mp4."""

import functools
import http.server
import json
import pathlib
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from processors import base, errors
from processors.providers import download

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello world\n\n00:00:02.000 --> 00:00:04.000\nsecond line\n"
SLOW_SIZE = 200 * 2**20


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> bytes:
    """A 4-second 320x240 H.264/AAC mp4, made once per run."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"),
            *("-f", "lavfi", "-i", "sine=frequency=440", "-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-shortest", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves the clip in several ways, pages that embed it, and failures."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        path = urllib.parse.urlsplit(self.path).path
        route = self.routes.get(path)
        if route is None:
            self._send(404, b"not found", "text/plain")
        else:
            route(self)

    def _send(self, status, body, content_type, length=True, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def clip(self):
        self._send(200, self.server.clip, "video/mp4")

    def no_length(self):
        # HTTP/1.0 without Content-Length: the size is known only once the connection closes.
        self._send(200, self.server.clip, "video/mp4", length=False)

    def slow(self, length=True):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        if length:
            self.send_header("Content-Length", str(SLOW_SIZE))
        self.end_headers()
        chunk = b"\0" * 65536
        try:
            for _ in range(SLOW_SIZE // len(chunk)):
                if self.server.stopping.wait(0.01):
                    return
                self.wfile.write(chunk)
        except OSError:
            pass  # the client went away, as a cancelled download does

    def slow_no_length(self):
        self.slow(length=False)

    def busy(self):
        self._send(503, b"busy", "text/plain", headers=[("Retry-After", "3")])

    def page(self):
        self._html('<video controls src="clip.mp4"><track kind="subtitles" srclang="en" src="clip.vtt"></video>')

    def page_bad_track(self):
        self._html('<video controls src="clip.mp4"><track kind="subtitles" srclang="en" src="gone.vtt"></video>')

    def page_two(self):
        self._html('<video src="clip.mp4"></video><video src="no-length.mp4"></video>')

    def page_none(self):
        self._html("<p>nothing to watch here</p>")

    def json_ld(self):
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        port = self.server.server_port
        meta = {"@context": "https://schema.org", "@type": "VideoObject", "name": "Described clip"}
        # With encodingFormat the extractor takes contentUrl as is, without requesting it.
        meta |= {"contentUrl": f"http://127.0.0.1:{port}/clip.mp4", "encodingFormat": "video/mp4", **query}
        self._html(f'<script type="application/ld+json">{json.dumps(meta)}</script>')

    def vtt(self):
        self._send(200, VTT.encode(), "text/vtt")

    def redirect(self):
        self.send_response(302)
        self.send_header("Location", f"http://localhost:{self.server.server_port}/clip.mp4")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _html(self, body):
        page = f"<html><head><title>Test clip</title></head><body>{body}</body></html>"
        self._send(200, page.encode(), "text/html; charset=utf-8")

    routes = {
        "/clip.mp4": clip,
        "/no-length.mp4": no_length,
        "/slow.mp4": slow,
        "/slow-no-length.mp4": slow_no_length,
        "/busy": busy,
        "/page.html": page,
        "/bad-track.html": page_bad_track,
        "/two.html": page_two,
        "/none.html": page_none,
        "/described.html": json_ld,
        "/clip.vtt": vtt,
        "/redirect": redirect,
    }


@pytest.fixture
def server(clip):
    """The HTTP server on 127.0.0.1, stopped at the end of the test."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.clip, httpd.requests, httpd.stopping = clip, [], threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = functools.partial("http://127.0.0.1:{}{}".format, httpd.server_port)
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def ctx(tmp_path):
    return base.Context("task-1", 1, tmp_path / "work")


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "dest"


def fetch(url, dest, ctx, **options):
    limits = {"max_seconds": 60.0, "max_bytes": 10 * 2**20, "allow_private": True}
    return download.download(url, dest, ctx, **(limits | options))


def probe_streams(path: pathlib.Path) -> list[str]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [stream["codec_type"] for stream in json.loads(done.stdout)["streams"]]


def names(folder: pathlib.Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_direct_mp4_is_downloaded_with_progress(server, dest, ctx, clip):
    fractions = []
    result = fetch(server.url("/clip.mp4"), dest, ctx, on_progress=fractions.append)
    assert result.path == dest / "source.mp4"
    assert result.path.read_bytes() == clip
    assert result.size == len(clip)
    assert probe_streams(result.path) == ["video", "audio"]
    assert result.duration == pytest.approx(4.0, abs=0.2)
    assert result.info == {
        "id": "clip",
        "title": "clip",
        "extractor": "generic",
        "webpage_url": server.url("/clip.mp4"),
        "ext": "mp4",
    }
    assert len(fractions) > 1 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert result.subtitles == ()
    assert names(dest) == ["source.mp4"]


def test_page_with_video_and_track_gives_subtitles(server, dest, ctx, clip):
    result = fetch(server.url("/page.html"), dest, ctx)
    assert result.path.read_bytes() == clip
    assert "Test clip" in result.title
    assert result.subtitles == (download.Subtitle("en", dest / "source.en.vtt"),)
    assert result.subtitles[0].path.read_text() == VTT
    assert names(dest) == ["source.en.vtt", "source.mp4"]


def test_a_failed_subtitle_track_does_not_fail_the_download(server, dest, ctx, clip):
    result = fetch(server.url("/bad-track.html"), dest, ctx)
    assert result.path.read_bytes() == clip
    assert result.subtitles == ()
    assert "/gone.vtt" in server.requests


def test_subtitle_languages_can_be_chosen(server, dest, ctx):
    result = fetch(server.url("/page.html"), dest, ctx, languages=["fr"])
    assert result.subtitles == ()
    assert "/clip.vtt" not in server.requests
    assert names(dest) == ["source.mp4"]


def test_missing_source_is_permanent(server, dest, ctx):
    with pytest.raises(errors.PermanentError, match=r"the source is unavailable: HTTP Error 404"):
        fetch(server.url("/missing.mp4"), dest, ctx)
    assert names(dest) == []


def test_page_without_video_is_permanent(server, dest, ctx):
    with pytest.raises(errors.PermanentError, match=r"the source is unavailable: Unsupported URL"):
        fetch(server.url("/none.html"), dest, ctx)


def test_page_with_several_videos_is_refused(server, dest, ctx):
    with pytest.raises(errors.PermanentError, match="several videos"):
        fetch(server.url("/two.html"), dest, ctx)
    assert names(dest) == []


def test_busy_server_is_retryable(server, dest, ctx):
    with pytest.raises(errors.RetryableError, match="503") as caught:
        fetch(server.url("/busy"), dest, ctx)
    assert not isinstance(caught.value, errors.PermanentError)
    assert caught.value.retry_after == 3.0


def test_unreachable_server_is_retryable(dest, ctx):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(errors.RetryableError, match="could not be reached"):
            fetch(f"http://127.0.0.1:{port}/clip.mp4", dest, ctx)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_hosts_are_refused_by_default(server, dest, ctx, host):
    url = f"http://{host}:{server.server_port}/clip.mp4"
    with pytest.raises(errors.PermanentError, match=f"refusing to download from {host}.*CONVEYOR_ALLOW_PRIVATE_URLS"):
        download.download(url, dest, ctx, max_seconds=60, max_bytes=2**20)
    assert server.requests == []


NOT_PUBLIC = [
    *("http://10.1.2.3/a.mp4", "http://169.254.169.254/latest", "http://[::1]/a", "http://[::ffff:127.0.0.1]/a"),
    *("http://100.64.0.1/a", "http://224.0.0.1/a", "http://0.0.0.0/a", "http://[fe80::1]/a"),
]


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_check_url_refuses_non_public_addresses(url):
    with pytest.raises(errors.PermanentError, match="private address"):
        download.check_url(url)
    download.check_url(url, allow_private=True)


def test_check_url_accepts_public_addresses():
    download.check_url("http://8.8.8.8/video.mp4")
    download.check_url("https://[2606:4700:4700::1111]/video.mp4")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/clip.mp4", "clip.mp4", "http:///clip.mp4"])
def test_other_schemes_are_refused(dest, ctx, url):
    with pytest.raises(errors.PermanentError, match=r"only http and https|has no host"):
        fetch(url, dest, ctx)


def test_redirect_to_a_private_host_is_refused(server, dest, ctx, monkeypatch):
    """The first lookup of video.test answers a public address, later ones 127.0.0.1 (as a
    rebinding DNS would); the server then redirects to localhost, which the re-check refuses."""
    real = socket.getaddrinfo
    lookups = []

    def getaddrinfo(host, *args, **kwargs):
        if host != "video.test":
            return real(host, *args, **kwargs)
        lookups.append(host)
        return real("93.184.216.34" if len(lookups) == 1 else "127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(errors.PermanentError, match="refusing to download from localhost"):
        url = f"http://video.test:{server.server_port}/redirect"
        download.download(url, dest, ctx, max_seconds=60, max_bytes=2**20)
    assert server.requests[0] == "/redirect"
    assert names(dest) == []


def test_duration_over_the_limit_after_download_is_removed(server, dest, ctx):
    limit = r"lasts 4 s, over the limit of 2 s \(CONVEYOR_SOURCE_MAX_SECONDS\)"
    with pytest.raises(errors.PermanentError, match=limit):
        fetch(server.url("/clip.mp4"), dest, ctx, max_seconds=2.0)
    assert server.requests.count("/clip.mp4") == 2  # probed, then downloaded
    assert names(dest) == []


def test_reported_duration_over_the_limit_stops_before_download(server, dest, ctx):
    with pytest.raises(errors.PermanentError, match="lasts 3600 s, over the limit of 60 s"):
        fetch(server.url("/described.html?duration=PT1H"), dest, ctx)
    assert "/clip.mp4" not in server.requests
    assert names(dest) == []


@pytest.mark.parametrize(
    "path",
    [
        "/described.html?contentSize=900000",  # reported by the page: nothing downloaded
        "/clip.mp4",  # Content-Length known when the download starts
        "/no-length.mp4",  # size known only by counting bytes
    ],
)
def test_size_over_the_limit_is_refused_and_removed(server, dest, ctx, path):
    fractions = []
    with pytest.raises(errors.PermanentError, match=r"over the limit of 50000 bytes \(CONVEYOR_SOURCE_MAX_BYTES\)"):
        fetch(server.url(path), dest, ctx, max_bytes=50_000, on_progress=fractions.append)
    assert all(fraction < 1.0 for fraction in fractions)
    assert names(dest) == []
    if path.startswith("/described"):
        assert "/clip.mp4" not in server.requests


@pytest.mark.parametrize("path", ["/slow.mp4", "/slow-no-length.mp4"])
def test_large_download_stops_at_the_size_limit(server, dest, ctx, path):
    started = time.monotonic()
    with pytest.raises(errors.PermanentError, match="over the limit of 1048576 bytes"):
        fetch(server.url(path), dest, ctx, max_bytes=2**20)
    assert time.monotonic() - started < 5  # stopped early, not after 200 MB
    assert names(dest) == []


def test_cancel_stops_the_download_and_removes_the_part_file(server, dest, ctx):
    fractions, cancelled_at = [], []
    flowing = threading.Event()

    def on_progress(fraction):
        fractions.append(fraction)
        flowing.set()

    def cancel_soon():
        if flowing.wait(10):
            time.sleep(0.5)
            cancelled_at.append(time.monotonic())
            ctx.cancel()

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    try:
        with pytest.raises(errors.Cancelled):
            fetch(server.url("/slow.mp4"), dest, ctx, max_bytes=SLOW_SIZE, on_progress=on_progress)
    finally:
        flowing.set()
        canceller.join(15)
    assert cancelled_at and time.monotonic() - cancelled_at[0] < 2.0
    assert fractions[-1] < 0.5  # it was under way, far from done
    assert names(dest) == []


def test_a_cancelled_task_does_not_start(server, dest, ctx):
    ctx.cancel()
    with pytest.raises(errors.Cancelled):
        fetch(server.url("/clip.mp4"), dest, ctx)
    assert server.requests == []


def test_download_for_reads_the_settings(server, dest, tmp_path, clip):
    settings = {
        "CONVEYOR_SOURCE_MAX_SECONDS": 60.0,
        "CONVEYOR_SOURCE_MAX_BYTES": 10 * 2**20,
        "CONVEYOR_ALLOW_PRIVATE_URLS": 0,
    }
    ctx = base.Context("task-1", 1, tmp_path / "work", settings=settings)
    with pytest.raises(errors.PermanentError, match="CONVEYOR_ALLOW_PRIVATE_URLS"):
        download.download_for(server.url("/clip.mp4"), dest, ctx)
    settings["CONVEYOR_ALLOW_PRIVATE_URLS"] = 1
    assert download.download_for(server.url("/clip.mp4"), dest, ctx).path.read_bytes() == clip
    settings["CONVEYOR_SOURCE_MAX_SECONDS"] = 2.0
    with pytest.raises(errors.PermanentError, match="CONVEYOR_SOURCE_MAX_SECONDS"):
        download.download_for(server.url("/clip.mp4"), dest, ctx)
    assert names(dest) == []
