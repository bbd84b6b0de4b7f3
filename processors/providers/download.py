"""The yt-dlp adapter: fetch one video from a URL into a directory, within limits.

`download` checks the URL, asks yt-dlp what the source is without downloading it, enforces the
duration and size limits on what it reports, downloads the media with a progress hook (which
reports progress, honours cancel and stops at the size limit), checks the file's real size and
its duration (measured with ffprobe), then fetches subtitles and captions that come with the
source. Everything it writes in `dest_dir` is named `source.*`; on any failure those files,
`.part` leftovers included, are removed.

Private addresses are refused unless allowed: the URL's host (checked at submit too, with
`submit_refusal`, the same rule), and then every host yt-dlp chose to fetch from (the final
page after redirects, the media, the subtitle tracks), must resolve only to public addresses.
Known limits of this check: an HTTP redirect is followed before its target is checked (the
request to it is made, its answer is not used), redirects while fetching the media itself and
the segments of HLS/DASH manifests are not checked, and a host whose DNS answer changes between
the check and the connection (DNS rebinding) is not caught. Deployments that need a hard
guarantee should also block private ranges at the network level.

yt-dlp is used as a library, which reads no configuration file (only its command line does),
no browser cookies and writes no cache; its messages go to the task's logger, never the console.
Cancel is checked in the progress hook, so a server that sends nothing is noticed only after the
socket timeout.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import pathlib
import socket
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator

import yt_dlp
import yt_dlp.networking
import yt_dlp.networking.exceptions
import yt_dlp.utils

from processors import base, errors

STEM = "source"
SOCKET_TIMEOUT = 30.0
FORMAT = "best[ext=mp4]/best"  # one progressive file: no merge step, and ffmpeg reads it directly
SUBTITLE_FORMAT = "vtt/srt/best"
PRIVATE_HINT = "set CONVEYOR_ALLOW_PRIVATE_URLS=1 to allow"
_NOT_PUBLIC = ("is_private", "is_loopback", "is_link_local", "is_multicast", "is_reserved", "is_unspecified")


@dataclasses.dataclass(frozen=True)
class Subtitle:
    """A subtitle or caption file yt-dlp wrote, with its language code."""

    language: str
    path: pathlib.Path


@dataclasses.dataclass(frozen=True)
class Download:
    """A downloaded source: the media file, what yt-dlp said about it, and its subtitles."""

    path: pathlib.Path
    title: str
    duration: float | None  # measured by ffprobe, else as yt-dlp reported it, else unknown
    size: int
    subtitles: tuple[Subtitle, ...]
    info: dict  # JSON-safe: id, title, extractor, webpage_url, ext


def download_for(
    url: str,
    dest_dir: str | pathlib.Path,
    ctx: base.Context,
    on_progress: Callable[[float], None] | None = None,
    languages: list[str] | None = None,
) -> Download:
    """Download `url` with the limits and the private-address rule from `ctx.settings`."""
    return download(
        url,
        dest_dir,
        ctx,
        max_seconds=float(ctx.settings["CONVEYOR_SOURCE_MAX_SECONDS"]),
        max_bytes=int(ctx.settings["CONVEYOR_SOURCE_MAX_BYTES"]),
        allow_private=bool(ctx.settings["CONVEYOR_ALLOW_PRIVATE_URLS"]),
        on_progress=on_progress,
        languages=languages,
    )


def download(
    url: str,
    dest_dir: str | pathlib.Path,
    ctx: base.Context,
    *,
    max_seconds: float,
    max_bytes: int,
    allow_private: bool = False,
    on_progress: Callable[[float], None] | None = None,
    languages: list[str] | None = None,
) -> Download:
    """Download one video from `url` into `dest_dir` as `source.<ext>`, with its subtitles.

    ctx: the processor context (cancel and logger).
    max_seconds, max_bytes: limits checked on what the source reports before downloading, on the
        bytes while downloading, and on the file after.
    allow_private: allow hosts that resolve to private, loopback or link-local addresses.
    on_progress: called with the fraction downloaded (0.0-1.0), never decreasing.
    languages: subtitle languages (yt-dlp codes or regexes); default all the source's own
        subtitles plus automatic captions in its own language.
    Raises PermanentError (refused URL, unavailable source, over a limit), RetryableError
    (network, timeout, HTTP 5xx or 429), or `Cancelled` when ctx is cancelled.
    """
    check_url(url, allow_private=allow_private)
    dest_dir = pathlib.Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    _remove_outputs(dest_dir)
    try:
        return _download(url, dest_dir, ctx, max_seconds, max_bytes, allow_private, on_progress, languages)
    except BaseException:
        _remove_outputs(dest_dir)
        raise


def check_url(url: str, *, allow_private: bool = False) -> None:
    """Raise PermanentError unless `url` is http(s) to a host with only public addresses."""
    parts = urllib.parse.urlsplit(url)
    problem = _url_problem(parts, url)
    if problem:
        raise errors.PermanentError(problem)
    if not allow_private:
        _check_host(parts.hostname)


def submit_refusal(url: str, *, allow_private: bool = False) -> str | None:
    """Return why a task that downloads `url` is refused before it is stored, or None.

    The rule of `check_url`, which the download applies again when the task runs, except that
    a host that cannot be resolved now is not refused here: the download tells a lasting
    failure from a passing one (and retries the latter).
    """
    parts = urllib.parse.urlsplit(url)
    problem = _url_problem(parts, url)
    if problem or allow_private:
        return problem
    try:
        addresses = _resolve(parts.hostname)
    except errors.ProcessorError:
        return None
    return None if all(_is_public(address) for address in addresses) else _private(parts.hostname)


def _url_problem(parts: urllib.parse.SplitResult, url: str) -> str | None:
    if parts.scheme not in ("http", "https"):
        return f"only http and https URLs can be downloaded, not {url!r}"
    if not parts.hostname:
        return f"the URL {url!r} has no host"
    return None


def _download(url, dest_dir, ctx, max_seconds, max_bytes, allow_private, on_progress, languages) -> Download:
    ctx.check()
    hook = _Hook(ctx, max_bytes, on_progress)
    with yt_dlp.YoutubeDL(_options(dest_dir, ctx, progress_hooks=[hook])) as ydl:
        info = _call(hook, ydl.extract_info, url, download=False)
        ctx.check()  # the hook sees only the download; extracting can take a while too
        _check_single(info)
        langs = _subtitle_languages(info, languages)
        if not allow_private:
            for host in sorted(_hosts(info, langs)):
                _check_host(host)
        _check_reported(info, max_seconds, max_bytes)
        info = _call(hook, ydl.process_ie_result, info, download=True)
    path = _media_path(info)
    duration = _check_file(path, max_seconds, max_bytes) or _number(info.get("duration"))
    hook.report(1.0)
    subtitles = _fetch_subtitles(info, dest_dir, ctx, langs)
    return Download(
        path=path,
        title=str(info.get("title") or info.get("id") or STEM),
        duration=duration,
        size=path.stat().st_size,
        subtitles=subtitles,
        info={key: _text(info.get(key)) for key in ("id", "title", "extractor", "webpage_url", "ext")},
    )


def _options(dest_dir: pathlib.Path, ctx, **extra) -> dict:
    return {
        "quiet": True,
        "noprogress": True,
        "logger": _Logger(ctx.logger),
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "cookiefile": None,
        "cookiesfrombrowser": None,
        "cachedir": False,
        "noplaylist": True,
        "playlistend": 2,  # enough to tell a page of several videos, which is refused
        "paths": {"home": str(dest_dir)},
        "outtmpl": {"default": f"{STEM}.%(ext)s"},
        "format": FORMAT,
        "continuedl": False,
        "socket_timeout": SOCKET_TIMEOUT,
        # The task's policy retries; yt-dlp retrying as well would multiply the wait.
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        **extra,
    }


class _Logger:
    """Routes yt-dlp's messages to a logger instead of the console."""

    def __init__(self, logger):
        self.logger = logger

    def debug(self, message: str) -> None:
        self.logger.debug("yt-dlp: %s", message)

    def info(self, message: str) -> None:
        self.logger.debug("yt-dlp: %s", message)

    def warning(self, message: str) -> None:
        self.logger.warning("yt-dlp: %s", message)

    def error(self, message: str) -> None:
        # Not an error of ours yet: the exception that follows says what it means for the task.
        self.logger.warning("yt-dlp: %s", message)


class _Hook:
    """yt-dlp progress hook: reports the fraction done, stops on cancel or at the size limit."""

    def __init__(self, ctx, max_bytes: int, on_progress: Callable[[float], None] | None):
        self.ctx = ctx
        self.max_bytes = max_bytes
        self.on_progress = on_progress
        self.stop: BaseException | None = None
        self.last = 0.0

    def __call__(self, status: dict) -> None:
        if self.ctx.cancelled():
            self._abort(errors.Cancelled())
        done = status.get("downloaded_bytes") or 0
        total = status.get("total_bytes")
        if total and total > self.max_bytes:
            self._abort(errors.PermanentError(_too_big(self.max_bytes, total)))
        if done > self.max_bytes:
            self._abort(errors.PermanentError(_too_big(self.max_bytes)))
        total = total or status.get("total_bytes_estimate")
        if status.get("status") == "finished":
            self.report(1.0)
        elif total:
            self.report(done / total)

    def report(self, fraction: float) -> None:
        # Estimates move, so clamp: callers get a fraction that never goes back.
        fraction = max(self.last, min(1.0, fraction))
        if self.on_progress and fraction > self.last:
            self.on_progress(fraction)
        self.last = fraction

    def _abort(self, reason: BaseException) -> None:
        self.stop = reason
        raise yt_dlp.utils.DownloadCancelled(str(reason))


def _call(hook: _Hook, function, *args, **kwargs):
    """Run a yt-dlp call, turning its exceptions into ours."""
    try:
        return function(*args, **kwargs)
    except yt_dlp.utils.DownloadCancelled as exc:
        _close_responses(exc.__traceback__)
        raise (hook.stop or errors.Cancelled()) from None
    except yt_dlp.utils.YoutubeDLError as exc:
        raise _translate(exc) from exc


def _close_responses(traceback) -> None:
    """Close the HTTP responses held by the frames a cancelled download unwound through.

    yt-dlp's HTTP downloader closes only the `.part` file when a progress hook raises; its
    response (kept as `ctx.data`) would hold the connection until garbage collection.
    """
    while traceback is not None:
        for value in traceback.tb_frame.f_locals.values():
            inner = value if isinstance(value, dict) else getattr(value, "__dict__", {})
            for item in (value, *inner.values()):
                if isinstance(item, yt_dlp.networking.Response):
                    item.close()
        traceback = traceback.tb_next


def _translate(exc: BaseException) -> errors.ProcessorError:
    chain = list(_causes(exc))
    for err in chain:
        if isinstance(err, yt_dlp.networking.exceptions.HTTPError):
            return _http_error(err)
    # Before `expected`: yt-dlp marks every network failure as expected.
    for err in chain:
        if isinstance(err, yt_dlp.networking.exceptions.TransportError | OSError | TimeoutError):
            return errors.RetryableError(f"the source could not be reached: {_message(err)}")
    for err in chain:
        if isinstance(err, yt_dlp.utils.ExtractorError) and err.expected:
            return errors.PermanentError(f"the source is unavailable: {_message(err)}")
    return errors.RetryableError(f"the download failed: {_message(exc)}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Yield `exc` and the exceptions behind it (yt-dlp keeps them in exc_info and cause)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        exc_info = getattr(err, "exc_info", None)
        todo += [exc_info[1] if exc_info else None, getattr(err, "cause", None), err.__cause__, err.__context__]


def _http_error(err: yt_dlp.networking.exceptions.HTTPError) -> errors.ProcessorError:
    retry_after = _retry_after(err)
    err.close()  # yt-dlp leaves the error's response, and its connection, open
    if err.status == 429 or err.status >= 500:
        return errors.RetryableError(f"the source is not available for now: {err.msg or err}", retry_after=retry_after)
    return errors.PermanentError(f"the source is unavailable: HTTP Error {err.status}: {err.reason}")


def _retry_after(err: yt_dlp.networking.exceptions.HTTPError) -> float | None:
    try:
        return float(err.response.headers.get("Retry-After"))
    except (AttributeError, TypeError, ValueError):
        return None  # absent, or an HTTP date: let the policy's backoff decide


def _message(err: BaseException) -> str:
    text = getattr(err, "orig_msg", None) or str(err)
    return text.removeprefix("ERROR: ")


def _check_host(host: str) -> None:
    """Raise PermanentError if `host` resolves to any non-public address."""
    if not all(_is_public(address) for address in _resolve(host)):
        raise errors.PermanentError(_private(host))


def _resolve(host: str) -> set[str]:
    """Return the addresses of `host`; raise RetryableError if DNS fails for now,
    PermanentError if the name does not resolve."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise errors.RetryableError(f"cannot resolve {host} for now: {exc}") from exc
        raise errors.PermanentError(f"the source is unavailable: cannot resolve {host}: {exc}") from exc
    return {item[4][0] for item in found}


def _private(host: str) -> str:
    return f"refusing to download from {host}: it resolves to a private address ({PRIVATE_HINT})"


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback; Python 3.11 does not say so
    # is_global also excludes shared (carrier-grade NAT) space, which is_private does not.
    return ip.is_global and not any(getattr(ip, flag) for flag in _NOT_PUBLIC)


def _check_single(info: dict) -> None:
    if info.get("_type") == "playlist":
        raise errors.PermanentError("the URL is a page or playlist of several videos; give the URL of one")


def _hosts(info: dict, languages: list[str]) -> set[str]:
    """Return the hosts the download will fetch from: final page, media, subtitle tracks."""
    urls = [info.get("webpage_url"), info.get("url"), info.get("manifest_url")]
    urls += [fmt.get("url") for fmt in info.get("requested_formats") or []]
    for tracks in (info.get("subtitles") or {}, info.get("automatic_captions") or {}):
        urls += [track.get("url") for lang in languages for track in tracks.get(lang) or []]
    parts = (urllib.parse.urlsplit(url) for url in urls if isinstance(url, str))
    return {part.hostname for part in parts if part.scheme in ("http", "https") and part.hostname}


def _check_reported(info: dict, max_seconds: float, max_bytes: int) -> None:
    duration = _number(info.get("duration"))
    if duration is not None and duration > max_seconds:
        raise errors.PermanentError(_too_long(duration, max_seconds))
    size = _number(info.get("filesize") or info.get("filesize_approx"))
    if size is not None and size > max_bytes:
        raise errors.PermanentError(_too_big(max_bytes, size))


def _media_path(info: dict) -> pathlib.Path:
    for item in info.get("requested_downloads") or []:
        if item.get("filepath") and pathlib.Path(item["filepath"]).is_file():
            return pathlib.Path(item["filepath"])
    raise errors.RetryableError("yt-dlp finished without writing the media file")


def _check_file(path: pathlib.Path, max_seconds: float, max_bytes: int) -> float | None:
    """Check the downloaded file's size and measured duration; return the duration."""
    size = path.stat().st_size
    if size > max_bytes:
        raise errors.PermanentError(_too_big(max_bytes, size))
    duration = _probe_duration(path)
    if duration is not None and duration > max_seconds:
        raise errors.PermanentError(_too_long(duration, max_seconds))
    return duration


def _probe_duration(path: str | pathlib.Path) -> float | None:
    """Return a media file's duration in seconds from ffprobe, None if it has none."""
    command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise errors.RetryableError(f"ffprobe took too long on {path}") from exc
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["no detail"]
        raise errors.PermanentError(f"the source is not a media file ffprobe can read: {detail[0]}")
    return _number(json.loads(done.stdout or "{}").get("format", {}).get("duration"))


def _subtitle_languages(info: dict, languages: list[str] | None) -> list[str]:
    """Return the subtitle languages to fetch.

    By default every subtitle the source has, and automatic captions only in the source's own
    language: YouTube offers machine translations of its captions into about 150 languages.
    """
    if languages is not None:
        return list(languages)
    own = info.get("language")
    manual = [lang for lang in info.get("subtitles") or {} if lang != "live_chat"]
    auto = [lang for lang in info.get("automatic_captions") or {} if lang == own or lang.endswith("-orig")]
    return manual + [lang for lang in auto if lang not in manual]


def _fetch_subtitles(info: dict, dest_dir: pathlib.Path, ctx, languages: list[str]) -> tuple[Subtitle, ...]:
    """Write the subtitle files; a track that fails is logged and skipped, not fatal."""
    if not languages:
        return ()
    ctx.check()
    hook = _Hook(ctx, max_bytes=2**63, on_progress=None)  # only for cancel
    options = _options(
        dest_dir,
        ctx,
        progress_hooks=[hook],
        skip_download=True,
        writesubtitles=True,
        writeautomaticsub=True,
        subtitleslangs=languages,
        subtitlesformat=SUBTITLE_FORMAT,
        ignoreerrors=True,  # turns a failed track into a warning
    )
    with yt_dlp.YoutubeDL(options) as ydl:
        result = _call(hook, ydl.process_ie_result, info, download=True) or {}
    found = []
    for lang, track in (result.get("requested_subtitles") or {}).items():
        path = pathlib.Path(track.get("filepath") or "")
        if track.get("filepath") and path.is_file():
            found.append(Subtitle(language=lang, path=path))
    return tuple(found)


def _remove_outputs(dest_dir: pathlib.Path) -> None:
    """Remove what this module writes in `dest_dir`: `source.*`, `.part` files included."""
    for path in dest_dir.glob(f"{STEM}.*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def _too_long(duration: float, max_seconds: float) -> str:
    return f"the source lasts {duration:.0f} s, over the limit of {max_seconds:.0f} s (CONVEYOR_SOURCE_MAX_SECONDS)"


def _too_big(max_bytes: int, size: float | None = None) -> str:
    what = f"{size:.0f} bytes" if size is not None else "more bytes than allowed"
    return f"the source is {what}, over the limit of {max_bytes} bytes (CONVEYOR_SOURCE_MAX_BYTES)"


def _number(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(value) -> str | None:
    return None if value is None else str(value)
