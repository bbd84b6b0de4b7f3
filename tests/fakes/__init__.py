"""Small real HTTP servers that stand in for outside services in tests, so the real SDKs run
over real HTTP on 127.0.0.1. The service-specific servers are in `openai_server` and
`elevenlabs_server`; this module holds what they share.

Every server is a context manager that serves from a thread on a free port and stops on exit::

    with openai_server.OpenAIServer() as server:
        settings = {**base_settings, **server.settings()}   # key and base URL of the fake
        server.queue("/v1/chat/completions", openai_server.error(429, "slow down", retry_after=1))
        ...                                                  # then the default answers again
        assert server.requests[0].json["model"] == "gpt-4o-mini"

Scripting, per route (the route as the server lists it in `ROUTES`, e.g.
"/v1/text-to-speech/{voice_id}", or a concrete path):

- `server.queue(route, *responses)`: the next requests to that route get these `Response`s, in
  order; after them the route's responder answers again.
- `server.on(route, responder)`: replace the route's responder, a callable taking the
  `Request` and returning a `Response`.

`server.requests` records every request (method, path, query, headers with lower-case names,
raw body, parsed JSON, multipart form fields and files, arrival time) in arrival order;
`server.requests_to(route)` filters them.
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import functools
import http.server
import io
import json
import math
import pathlib
import re
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse
import wave
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass
class Response:
    """An answer a fake sends: JSON (`json`) or raw bytes (`body`), with status and headers.

    delay: seconds to wait before answering (to test client timeouts).
    """

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0

    def payload(self) -> tuple[bytes, str]:
        """Return the bytes to send and their content type."""
        if self.body is not None:
            return self.body, self.content_type or "application/octet-stream"
        data = b"" if self.json is None else json.dumps(self.json).encode()
        return data, self.content_type or "application/json"


@dataclasses.dataclass
class Request:
    """A request a fake received."""

    method: str
    path: str
    route: str | None
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    form: dict[str, str]
    files: dict[str, tuple[str, bytes]]
    time: float


Responder = Callable[[Request], Response]


class FakeServer:
    """A threaded HTTP server answering from per-route responders and queued responses.

    Subclasses fill `ROUTES`: (method, route pattern with {name} parts, method name of the
    default responder).
    """

    ROUTES: tuple[tuple[str, str, str], ...] = ()

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._queued: dict[str, list[Response]] = {}
        self._responders: dict[str, Responder] = {route: getattr(self, name) for _, route, name in self.ROUTES}
        self._patterns = [(method, route, _pattern(route)) for method, route, _ in self.ROUTES]
        self._lock = threading.Lock()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle
    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving on a free port of 127.0.0.1."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    @property
    def url(self) -> str:
        """The server's root URL, e.g. http://127.0.0.1:40123."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # Scripting
    def queue(self, route: str, *responses: Response) -> None:
        """Answer the next requests to `route` with `responses`, in order."""
        with self._lock:
            self._queued.setdefault(route, []).extend(responses)

    def on(self, route: str, responder: Responder) -> None:
        """Answer requests to `route` with `responder(request)` from now on."""
        self._responders[route] = responder

    def requests_to(self, route: str) -> list[Request]:
        """Return the requests received for `route` (a pattern or a concrete path)."""
        return [r for r in self.requests if route in (r.route, r.path)]

    # Dispatch (called from the handler threads)
    def answer(self, request: Request) -> Response:
        """Return the response for a received request."""
        with self._lock:
            self.requests.append(request)
            refused = self.check_auth(request)
            if refused is not None:
                return refused
            for key in (request.path, request.route):
                if key is not None and self._queued.get(key):
                    return self._queued[key].pop(0)
        if request.route is None:
            return self.not_found(request)
        return self._responders[request.route](request)

    def match(self, method: str, path: str) -> tuple[str | None, dict[str, str]]:
        """Return the route pattern matching a request and the values of its {name} parts."""
        for route_method, route, pattern in self._patterns:
            found = pattern.fullmatch(path)
            if found and route_method == method:
                return route, found.groupdict()
        return None, {}

    def check_auth(self, request: Request) -> Response | None:
        """Return the answer to a request with a wrong key, or None to let it through."""
        return None

    def not_found(self, request: Request) -> Response:
        """Answer a request to a path the fake does not serve."""
        return Response(404, json={"error": f"no route {request.method} {request.path}"})


class _Handler(http.server.BaseHTTPRequestHandler):
    fake: FakeServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _serve(self) -> None:
        request = self._read()
        try:
            response = self.fake.answer(request)
        except Exception as exc:  # a broken responder should show as a 500, not a hang
            response = Response(500, json={"error": {"message": f"fake server error: {exc!r}", "type": "server_error"}})
        if response.delay:
            time.sleep(response.delay)
        data, content_type = response.payload()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. a timeout test)

    def _read(self) -> Request:
        url = urllib.parse.urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = self._body(headers)
        route, params = self.fake.match(self.command, url.path)
        form, files = _multipart(headers.get("content-type", ""), body)
        return Request(
            method=self.command,
            path=url.path,
            route=route,
            params=params,
            query=urllib.parse.parse_qs(url.query),
            headers=headers,
            body=body,
            json=_json(headers.get("content-type", ""), body),
            form=form,
            files=files,
            time=time.monotonic(),
        )

    def _body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return self._chunked()
        return self.rfile.read(int(headers.get("content-length") or 0))

    def _chunked(self) -> bytes:
        data = io.BytesIO()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()  # the blank line after the last chunk
                return data.getvalue()
            data.write(self.rfile.read(size))
            self.rfile.readline()


def _pattern(route: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route)))


def _json(content_type: str, body: bytes) -> Any:
    if "json" not in content_type or not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Split a multipart/form-data body into text fields and files (name -> (filename, bytes))."""
    if not content_type.startswith("multipart/form-data"):
        return {}, {}
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    form: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, data)
        elif name in form:  # repeated fields such as timestamp_granularities[]
            form[name] += "," + data.decode()
        else:
            form[name] = data.decode()
    return form, files


# Media for the fakes' answers: real, decodable files.


def sine_wav(seconds: float, rate: int = 24000, frequency: float = 440.0) -> bytes:
    """Return a mono 16-bit WAV of a sine tone."""
    frames = int(seconds * rate)
    samples = (int(12000 * math.sin(2 * math.pi * frequency * n / rate)) for n in range(frames))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{frames}h", *samples))
    return out.getvalue()


def pcm(seconds: float, rate: int = 24000) -> bytes:
    """Return raw 16-bit little-endian mono PCM of a sine tone (a WAV without its header)."""
    return sine_wav(seconds, rate)[44:]


# Output format -> (ffmpeg arguments, container) for `encoded`.
_CODECS = {
    "mp3": ["-codec:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
    "flac": ["-codec:a", "flac", "-f", "flac"],
    "opus": ["-codec:a", "libopus", "-f", "ogg"],
    "aac": ["-codec:a", "aac", "-f", "adts"],
}


@functools.cache
def encoded(format: str, seconds: float = 1.0, rate: int = 44100) -> bytes:
    """Return a real audio file of a sine tone in `format` (wav, pcm, mp3, flac, opus, aac)."""
    if format == "wav":
        return sine_wav(seconds, rate)
    if format == "pcm":
        return pcm(seconds, rate)
    with tempfile.TemporaryDirectory() as scratch:
        source = pathlib.Path(scratch, "tone.wav")
        source.write_bytes(sine_wav(seconds, rate))
        argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
        done = subprocess.run([*argv, *_CODECS[format], "-"], capture_output=True, check=True, timeout=60)
        return done.stdout


def media_duration(data: bytes) -> float | None:
    """Return the duration in seconds of an audio or video file's bytes, or None if unreadable."""
    with tempfile.NamedTemporaryFile() as media:
        media.write(data)
        media.flush()
        argv = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", media.name]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    try:
        return float(done.stdout.strip())
    except ValueError:
        return None
