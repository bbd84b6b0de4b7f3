"""The ffmpeg/ffprobe adapter against the real binaries: argv building, progress, cancel,
timeouts and signals stopping the process group, errors, probing, burning subtitles from an
awkward path, and the shared audio helpers."""

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image, ImageChops

from processors import base, errors
from processors.providers import ffmpeg, process
from tests import media


@pytest.fixture
def ctx(tmp_path):
    return base.Context(task_id="t", attempt=1, workdir=tmp_path / "w")


def _pattern(seconds: float, size: str = "320x240", realtime: bool = False) -> ffmpeg.Command:
    """A test-pattern input; `realtime` reads it at 1x so the encode takes `seconds`."""
    return ffmpeg.Command().input(f"testsrc2=size={size}:rate=25", f="lavfi", t=seconds, re=realtime)


def _encode(command: ffmpeg.Command, out: pathlib.Path, **opts) -> ffmpeg.Command:
    return command.output(out, **opts, vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p")


class _Watcher(threading.Thread):
    """After `delay` s, and once `ctx` tracks a process (a loaded machine may start ffmpeg
    late), notes the processes it tracks, then cancels the task if asked."""

    def __init__(self, ctx: base.Context, delay: float, cancel: bool):
        super().__init__(daemon=True)
        self.ctx, self.delay, self.cancel = ctx, delay, cancel
        self.seen: list[subprocess.Popen] = []

    def run(self) -> None:
        time.sleep(self.delay)
        deadline = time.monotonic() + 10
        while not self.seen and time.monotonic() < deadline:
            self.seen = self.ctx.tracked()
            time.sleep(0.01)
        if self.cancel:
            self.ctx.cancel()


def _assert_gone(child: subprocess.Popen) -> None:
    assert child.returncode is not None, "the child was not reaped"
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    assert process.group_members(child.pid) == []


# Building arguments


def test_builder_makes_the_argv_of_a_clip_command(tmp_path):
    command = (
        ffmpeg.Command()
        .input("/in/talk.mp4", ss=12.5, t=30)
        .filter_complex("[0:v]crop=ih*9/16:ih,scale=1080:1920[v]")
        .output(
            "/out/clip.mp4",
            map=["[v]", "0:a"],
            **{"c:v": "libx264", "c:a": "aac"},
            crf=20,
            pix_fmt="yuv420p",
            movflags="+faststart",
        )
    )

    assert command.args() == [
        "ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "warning",
        "-ss", "12.5", "-t", "30", "-i", "/in/talk.mp4",
        "-filter_complex", "[0:v]crop=ih*9/16:ih,scale=1080:1920[v]",
        "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-c:a", "aac", "-crf", "20",
        "-pix_fmt", "yuv420p", "-movflags", "+faststart", "/out/clip.mp4",
    ]  # fmt: skip
    assert command.args(progress=True)[6:9] == ["-progress", "pipe:1", "-nostats"]


def test_builder_maps_flags_none_and_small_floats():
    command = ffmpeg.Command().option(stats_period=0.25).input("a.wav", re=True, ss=0.00001, itsoffset=None)
    command.input("b.wav", ss=0, t=2.0)
    command.output("-b.mp3", vn=True, sn=False, vf="scale=2:2", af="volume=0.5")

    assert command.args()[6:] == [
        "-stats_period", "0.25", "-ss", "0.00001", "-re", "-i", "a.wav", "-ss", "0", "-t", "2", "-i", "b.wav",
        "-vn", "-vf", "scale=2:2", "-af", "volume=0.5", "./-b.mp3",
    ]  # fmt: skip


def test_escape_filter_path_escapes_both_levels():
    escaped = ffmpeg.escape_filter_path("/tmp/it's: a, [b];c\\d.srt")

    assert escaped == "/tmp/it\\\\\\'s\\\\: a\\, \\[b\\]\\;c\\\\\\\\d.srt"


# Running


def test_run_reports_rising_progress_and_makes_the_expected_file(ctx, tmp_path):
    out = tmp_path / "out.mp4"
    command = _pattern(6, size="1280x720").input("sine=frequency=440", f="lavfi", t=6)
    command.option(stats_period=0.1)  # several reports even from a fast encode
    fractions: list[float] = []

    ffmpeg.run(_encode(command, out), ctx, duration=6, on_progress=fractions.append)

    assert len(fractions) >= 3, fractions
    assert fractions == sorted(set(fractions)), "fractions must only rise"
    assert 0 < fractions[0] < 1 and fractions[-1] == 1.0
    probe = ffmpeg.probe(out)
    assert abs(probe.duration - 6) < 0.1
    assert [(v.codec, v.width, v.height, v.pix_fmt, v.fps) for v in probe.video] == [
        ("h264", 1280, 720, "yuv420p", 25.0)
    ]
    assert [a.codec for a in probe.audio] == ["aac"]
    assert ctx.tracked() == []


def test_cancel_kills_ffmpeg_within_two_seconds(ctx, tmp_path):
    watcher = _Watcher(ctx, delay=0.5, cancel=True)
    watcher.start()
    started = time.monotonic()

    with pytest.raises(errors.Cancelled):
        ffmpeg.run(_encode(_pattern(60, realtime=True), tmp_path / "long.mp4"), ctx, duration=60)

    assert time.monotonic() - started < 2.5
    watcher.join()
    assert len(watcher.seen) == 1, "ffmpeg was not tracked while it ran"
    _assert_gone(watcher.seen[0])
    assert ctx.tracked() == []


def test_timeout_kills_ffmpeg_and_is_retryable(ctx, tmp_path):
    watcher = _Watcher(ctx, delay=0.1, cancel=False)
    watcher.start()
    started = time.monotonic()

    with pytest.raises(errors.RetryableError, match="ffmpeg timed out after 1s"):
        ffmpeg.run(_encode(_pattern(60, realtime=True), tmp_path / "long.mp4"), ctx, timeout=1)

    assert 1 <= time.monotonic() - started < 3
    watcher.join()
    _assert_gone(watcher.seen[0])


def test_a_soft_timeout_signal_kills_ffmpeg_before_propagating(ctx, tmp_path):
    def soft_timeout(signum, frame):
        raise errors.SoftTimeout()

    watcher = _Watcher(ctx, delay=0.3, cancel=False)
    watcher.start()
    previous = signal.signal(signal.SIGALRM, soft_timeout)
    signal.setitimer(signal.ITIMER_REAL, 0.6)
    try:
        with pytest.raises(errors.SoftTimeout):
            ffmpeg.run(_encode(_pattern(60, realtime=True), tmp_path / "long.mp4"), ctx)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    watcher.join()
    _assert_gone(watcher.seen[0])
    assert ctx.tracked() == []


_WORKER = """
import pathlib, sys
from processors import base
from processors.providers import ffmpeg

out = pathlib.Path(sys.argv[1])
ctx = base.Context(task_id="t", attempt=1, workdir=out.parent / "w")
command = ffmpeg.Command().input("testsrc2=size=320x240:rate=25", f="lavfi", t=60, re=True)
command.output(out, vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p")
ffmpeg.run(command, ctx, duration=60, on_progress=lambda fraction: print("encoding", flush=True))
"""


def _children(pid: int) -> list[int]:
    return [int(child) for child in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie waits for init to reap it: it runs no more


@pytest.mark.skipif(not pathlib.Path("/proc/self/task").exists(), reason="Linux only")
def test_ffmpeg_dies_with_a_worker_killed_by_sigkill(tmp_path):
    """A worker killed with SIGKILL runs no cleanup; ffmpeg must not go on encoding without it."""
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path / "out.mp4")],
        cwd=pathlib.Path(__file__).parents[3],
        stdout=subprocess.PIPE,
        text=True,
    )
    encoder = None
    try:
        assert worker.stdout.readline() == "encoding\n"  # ffmpeg is running and reporting
        (encoder,) = _children(worker.pid)
        assert _alive(encoder)

        worker.kill()
        worker.wait(10)

        deadline = time.monotonic() + 5
        while _alive(encoder) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(encoder), "ffmpeg outlived the worker that started it"
    finally:
        worker.kill()
        worker.wait(10)
        worker.stdout.close()
        if encoder is not None and _alive(encoder):
            os.kill(encoder, signal.SIGKILL)


def test_a_bad_input_fails_permanently_with_ffmpegs_error_line(ctx, tmp_path):
    missing = tmp_path / "missing.mp4"

    with pytest.raises(ffmpeg.FfmpegError) as caught:
        ffmpeg.run(ffmpeg.Command().input(missing).output(tmp_path / "out.mp4"), ctx)

    error = caught.value
    assert isinstance(error, errors.PermanentError)
    assert f"{missing}: No such file or directory" in str(error)
    assert "No such file or directory" in error.stderr_tail
    assert error.returncode != 0
    assert ctx.tracked() == []


def test_missing_binaries_are_permanent_errors(ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(errors.PermanentError, match="ffmpeg is not installed"):
        ffmpeg.run(_pattern(1).output(tmp_path / "x.mp4"), ctx)
    with pytest.raises(errors.PermanentError, match="ffprobe is not installed"):
        ffmpeg.probe(tmp_path / "x.mp4")


def test_cancel_before_start_starts_nothing(ctx, tmp_path):
    ctx.cancel()

    with pytest.raises(errors.Cancelled):
        ffmpeg.run(_encode(_pattern(1), tmp_path / "x.mp4"), ctx)

    assert not (tmp_path / "x.mp4").exists()


# Probing


def test_probe_describes_made_media(tmp_path):
    cues = [(0.5, 1.5, "Hello there"), (1.5, 2.8, "this is a test")]
    mp4 = media.make_video(tmp_path / "a.mp4", 3, speech_text="Hello there, this is a test.", subtitles=cues)
    mkv = media.make_video(tmp_path / "b.mkv", 2, size=(320, 240), subtitles=cues[:1])

    first, second = ffmpeg.probe(mp4), ffmpeg.probe(mkv)

    assert abs(first.duration - 3) <= 0.05 and abs(second.duration - 2) <= 0.05
    assert first.size == mp4.stat().st_size and "mp4" in first.format_name
    assert first.video == (ffmpeg.VideoStream(0, "h264", 1280, 720, "yuv420p", 25.0),)
    assert first.audio == (ffmpeg.AudioStream(1, "aac", 44100, 1),)
    assert first.subtitles == (ffmpeg.SubtitleStream(2, "mov_text", "eng"),)
    assert second.format_name == "matroska,webm"
    assert (second.video[0].width, second.video[0].height) == (320, 240)
    assert second.subtitles == (ffmpeg.SubtitleStream(2, "subrip", "eng"),)
    assert ffmpeg.audio_duration(mp4) == first.duration


def test_probe_of_a_text_file_names_it_and_says_why(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")

    with pytest.raises(errors.PermanentError) as caught:
        ffmpeg.probe(notes)

    assert str(notes) in str(caught.value)
    assert "Invalid data found when processing input" in str(caught.value)


# Filters and helpers


def test_burns_subtitles_from_a_path_with_colon_quote_and_comma(ctx, tmp_path):
    source = media.make_video(tmp_path / "src.mp4", 3, size=(640, 360))
    srt = media.write_srt(tmp_path / "it's: a, [odd] dir" / "subs.srt", [(0.0, 2.0, "BIG WHITE WORDS")])
    plain, burned = tmp_path / "plain.mp4", tmp_path / "burned.mp4"
    style = "force_style=Fontsize=40"

    burn = f"subtitles={ffmpeg.escape_filter_path(srt)}:{style}"

    ffmpeg.run(_encode(ffmpeg.Command().input(source), plain), ctx)
    ffmpeg.run(_encode(ffmpeg.Command().input(source), burned, vf=burn), ctx)

    def frame(video: pathlib.Path, at: float) -> Image.Image:
        png = ffmpeg.extract_frame(video, at, tmp_path / f"{video.stem}-{at}.png", ctx)
        return Image.open(png).convert("L")

    during = ImageChops.difference(frame(plain, 1.0), frame(burned, 1.0))
    after = ImageChops.difference(frame(plain, 2.5), frame(burned, 2.5))
    bottom = (0, 240, 640, 360)
    assert during.crop(bottom).getextrema()[1] > 100, "no subtitle drawn at the bottom while the cue shows"
    assert during.crop((0, 0, 640, 200)).getextrema()[1] < 60, "frames differ away from the subtitle"
    assert after.getextrema()[1] < 60, "frames differ although no cue shows"


def test_extract_frame_writes_a_png_of_the_video_size(ctx, tmp_path):
    video = media.make_video(tmp_path / "v.mp4", 1, size=(320, 240))

    png = ffmpeg.extract_frame(video, 0.5, tmp_path / "f.png", ctx)

    with Image.open(png) as image:
        assert (image.format, image.size) == ("PNG", (320, 240))


@pytest.mark.parametrize(("fmt", "codec"), [("mp3", "mp3"), ("wav", "pcm_s16le"), ("ogg", "vorbis")])
def test_to_audio_converts_and_drops_video(ctx, tmp_path, fmt, codec):
    video = media.make_video(tmp_path / "v.mp4", 1.5, size=(160, 120))

    out = ffmpeg.to_audio(video, tmp_path / f"a.{fmt}", fmt, ctx)

    probe = ffmpeg.probe(out)
    assert [a.codec for a in probe.audio] == [codec] and probe.video == ()
    assert abs(probe.duration - 1.5) < 0.1


def test_to_audio_rejects_an_unknown_format(ctx, tmp_path):
    with pytest.raises(errors.PermanentError, match="unsupported audio format 'flac'"):
        ffmpeg.to_audio(tmp_path / "a.wav", tmp_path / "a.flac", "flac", ctx)


def test_concat_audio_joins_files_of_different_rates(ctx, tmp_path):
    speech = media.make_speech_wav(tmp_path / "s.wav", "One two three.")  # 22.05 kHz
    tone = media.make_tone_wav(tmp_path / "t.wav", 1.0, rate=44100)
    expected = ffmpeg.audio_duration(speech) + 1.0

    out = ffmpeg.concat_audio([speech, tone, speech], tmp_path / "joined.mp3", ctx)

    probe = ffmpeg.probe(out)
    assert [a.codec for a in probe.audio] == ["mp3"]
    assert abs(probe.duration - (expected + ffmpeg.audio_duration(speech))) < 0.1


# Process groups


def test_kill_group_escalates_to_sigkill_for_a_group_ignoring_sigterm():
    child = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 30 & sleep 30; wait"],
        start_new_session=True,
    )
    deadline = time.monotonic() + 5
    while len(process.group_members(child.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # wait for the shell to start both sleeps
    assert len(process.group_members(child.pid)) == 3
    started = time.monotonic()

    process.kill_group(child, grace=0.3)

    assert 0.3 <= time.monotonic() - started < 5
    assert child.returncode == -signal.SIGKILL
    _assert_gone(child)
