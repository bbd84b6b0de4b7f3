"""`video_clip` end to end with the real ffmpeg, yt-dlp and espeak-ng. Sources are made here (a
test pattern, espeak-ng speech and an embedded subtitle track) and served over HTTP on
127.0.0.1; the OpenAI-compatible speech-to-text and chat are the fake server on 127.0.0.1.

- without LLM or speech-to-text: transcript from the embedded subtitles, heuristic segments,
  9:16 clips, and captions that show in the frames (the same clip rendered with subtitles off
  differs only in the lower part of the frame);
- with both: the words of the speech-to-text, the clips the chat answer chose, 1:1 frames;
- through the API and a real worker: one `artifact` event per clip, clips downloadable and
  matching the result; a worker killed after storing a clip, and the retry leaves one set;
- errors: unreachable, private, too long, no transcript for captions, a bad LLM answer twice;
- a cancel during rendering stops ffmpeg within 2 s.
"""

import io
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import werkzeug.datastructures
import werkzeug.test
from PIL import Image, ImageChops, ImageStat

from app import config, runtime
from processors import base, captions, errors, phrases
from processors.video_clip import VideoClipProcessor, segments, titles
from tests import media
from tests.api.conftest import bearer
from tests.conftest import wait_for
from tests.fakes import openai_server

SECONDS = 20.0
CUES = [
    (0.3, 3.2, "Welcome to the clip factory."),
    (3.5, 6.8, "Today we cut long videos into short ones."),
    (7.0, 10.2, "Every clip gets burned in captions."),
    (10.5, 13.6, "Vertical frames suit phone screens."),
    (14.0, 17.0, "Square frames suit social feeds."),
    (17.3, 19.8, "Thanks for watching this test."),
]
SPEECH = " ".join(text for _, _, text in CUES)
# What the fake speech-to-text hears: its words are spread evenly over the audio.
HEARD = (
    "Good morning everyone and welcome back to the studio. Our topic today is making short clips "
    "from long recordings. First we listen to every word and note its time. Then a model picks the "
    "moments worth sharing. Finally each moment is cut and framed for phones. That is all for now."
)
TALK_ID = "00000000-0000-4000-8000-0000000000c1"
PLAIN_ID = "00000000-0000-4000-8000-0000000000c2"
TERMINAL = ("succeeded", "failed", "cancelled")
_LINE = re.compile(r"^\[(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)\] (.*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def sources(media_site) -> dict[str, pathlib.Path]:
    """`talk`: 20 s of 640x360 test pattern with speech and six embedded subtitles; `plain`: 4 s
    of 320x240 with a tone and no subtitles. Both are served by `media_site`."""
    folder = media_site.folder
    talk = media.make_video(folder / "talk.mp4", SECONDS, size=(640, 360), speech_text=SPEECH, subtitles=CUES)
    plain = media.make_video(folder / "plain.mp4", 4, size=(320, 240))
    return {"talk": talk, "plain": plain}


# Helpers


def make_settings(tmp_path: pathlib.Path, **overrides) -> dict:
    """Return full settings with no OpenAI key unless given, private URLs allowed unless not."""
    return config.load({"CONVEYOR_VAR_DIR": str(tmp_path / "var")}, {"CONVEYOR_ALLOW_PRIVATE_URLS": 1, **overrides})


def context(tmp_path: pathlib.Path, settings: dict, name: str, uploads: dict | None = None) -> base.Context:
    return base.Context(name, 1, tmp_path / name, settings=settings, uploads=uploads)


def run(params: dict, ctx: base.Context) -> dict:
    """Run video_clip with raw params as the queue does (load, then run)."""
    processor = VideoClipProcessor()
    return processor.run(processor.load_params(params), ctx)


def assert_clip(path: pathlib.Path, clip: dict, size: tuple[int, int]) -> None:
    """Check a clip file: its size, H.264/AAC yuv420p, and a duration within 0.1 s of its segment."""
    info = media.probe(path)
    [video] = [s for s in info["streams"] if s["codec_type"] == "video"]
    [audio] = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert (video["width"], video["height"]) == size
    assert (video["codec_name"], video["pix_fmt"], audio["codec_name"]) == ("h264", "yuv420p", "aac")
    segment = clip["end"] - clip["start"]
    assert abs(float(info["format"]["duration"]) - segment) <= 0.1, (info["format"]["duration"], clip)


def frame(clip: pathlib.Path, at: float, out: pathlib.Path) -> Image.Image:
    """Extract the frame at `at` seconds with ffmpeg (our own argv, not the code under test)."""
    argv = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", f"{at:.3f}", "-i", str(clip), "-frames:v", "1", str(out)]
    subprocess.run(argv, check=True, timeout=60)
    with Image.open(out) as image:
        return image.convert("RGB")


def changed(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """Return the mean difference (0-255) and the share of pixels differing by more than 40."""
    diff = ImageChops.difference(a.crop(box), b.crop(box)).convert("L")
    histogram = diff.histogram()
    return ImageStat.Stat(diff).mean[0], sum(histogram[41:]) / sum(histogram)


def caption_time(clip: dict) -> float:
    """Return a time inside the clip (from its start) in the middle of the cue shown longest."""
    spans = [(min(end, clip["end"]) - max(start, clip["start"]), start, end) for start, end, _ in CUES]
    overlap, start, end = max(spans)
    assert overlap > 0.4, "the clip should show a caption for a while"
    return (max(start, clip["start"]) + min(end, clip["end"])) / 2 - clip["start"]


def transcript_lines(body: dict) -> list[tuple[float, float, str]]:
    """Return the `[start-end] text` lines of the transcript in a chat request."""
    text = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return [(float(start), float(end), words) for start, end, words in _LINE.findall(text)]


def ffmpeg_children() -> list[int]:
    """Return the ids of live ffmpeg processes whose parent is this pytest process."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        state, ppid = text.rsplit(")", 1)[1].split()[:2]
        if name == "ffmpeg" and int(ppid) == os.getpid() and state != "Z":
            found.append(int(stat.parent.name))
    return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Without LLM or speech-to-text


def test_clips_from_a_url_with_embedded_subtitles_and_the_heuristic(sources, media_site, tmp_path):
    settings = make_settings(tmp_path)
    params = {"source": {"url": media_site.url("talk.mp4")}, "max_clips": 1, "min_s": 2, "max_s": 3}
    on_ctx = context(tmp_path, settings, "captions-on")
    result = run(params, on_ctx)

    assert "/talk.mp4" in media_site.paths, "yt-dlp fetched the source over HTTP"
    assert (result["transcript_origin"], result["segments_by"]) == ("embedded_subtitles", "heuristic")
    assert result["usage"] == {}
    assert result["source_duration"] == pytest.approx(SECONDS, abs=0.1)
    [clip] = result["clips"]
    assert 2 - 0.01 <= clip["end"] - clip["start"] <= 3 + 0.01 and 0 <= clip["start"] < clip["end"] <= SECONDS
    assert clip["reason"].startswith("loudness") and 0 <= clip["score"] <= 1
    assert clip["text"] and clip["text"] in " ".join(text for _, _, text in CUES)
    # With no LLM the title is the key phrase of what the clip says: its own words, not empty.
    assert clip["title"] and clip["title"].casefold() in clip["text"].casefold(), clip
    assert [a["kind"] for a in on_ctx.artifacts] == ["clip", "transcript", "analysis"]
    assert on_ctx.artifacts[0]["metadata"] == {k: v for k, v in clip.items() if k not in ("artifact", "name")}
    stored = json.loads(pathlib.Path(on_ctx.artifacts[1]["path"]).read_text())
    assert [c["text"] for c in stored["cues"]] == [text for _, _, text in CUES]
    captioned = on_ctx.workdir / clip["name"]
    assert_clip(captioned, clip, (1080, 1920))

    off_ctx = context(tmp_path, settings, "captions-off")
    plain = run({**params, "subtitles": False}, off_ctx)
    assert [(c["start"], c["end"]) for c in plain["clips"]] == [(clip["start"], clip["end"])]
    bare = off_ctx.workdir / plain["clips"][0]["name"]
    assert_clip(bare, plain["clips"][0], (1080, 1920))

    at = caption_time(clip)
    with_text, without = frame(captioned, at, tmp_path / "on.png"), frame(bare, at, tmp_path / "off.png")
    width, height = with_text.size
    top_mean, top_share = changed(with_text, without, (0, 0, width, height * 6 // 10))
    _, bottom_share = changed(with_text, without, (0, height * 3 // 4, width, height))
    assert top_mean < 1.0 and top_share < 0.001, "outside the captions the frames are the same"
    assert bottom_share > 0.005, "the captioned frame shows text in its lower part"


# With speech-to-text and an LLM


def test_clips_chosen_by_the_llm_from_speech_to_text_words(sources, tmp_path):
    asked = []

    def choose(body: dict) -> dict:
        lines = transcript_lines(body)
        first, second = lines[0][0], lines[1][0]
        clips = [
            {"start": second, "end": second + 2.2, "title": "The method", "score": 0.9, "reason": "explains how"},
            {"start": first, "end": first + 2.5, "title": "The opening", "score": 0.7, "reason": "sets the topic"},
        ]
        asked.extend(clips)
        return {"clips": clips}

    with openai_server.OpenAIServer(chat=choose, transcript_text=HEARD) as server:
        settings = make_settings(tmp_path, **server.settings())
        ctx = context(tmp_path, settings, "llm", uploads={TALK_ID: sources["talk"]})
        params = {"source": {"upload_id": TALK_ID}, "max_clips": 2, "min_s": 2, "max_s": 3, "aspect": "1:1"}
        result = run(params, ctx)
        chats = server.requests_to("/v1/chat/completions")
        heard = server.requests_to("/v1/audio/transcriptions")

    assert (len(chats), len(heard)) == (1, 1)
    sent = transcript_lines(chats[0].json)
    assert " ".join(words for _, _, words in sent).split() == [w.strip(".") for w in HEARD.split()]
    assert sent[-1][1] == pytest.approx(SECONDS, abs=0.2), "the words span the whole audio"
    assert (result["transcript_origin"], result["segments_by"]) == ("speech_to_text", "llm")
    assert result["usage"]["total_tokens"] > 0
    metered = {}
    for item in ctx.usage:
        metered[item["measure"]] = metered.get(item["measure"], 0) + item["quantity"]
    assert metered["transcribed_seconds"] == pytest.approx(SECONDS, abs=0.2), "the audio sent to speech-to-text"
    assert metered["llm_input_tokens"] == result["usage"]["prompt_tokens"]
    clips = result["clips"]
    assert metered["media_seconds"] == pytest.approx(sum(c["duration"] for c in clips))
    assert [c["title"] for c in clips] == ["The opening", "The method"], "clips come in time order"
    for clip, wanted in zip(clips, reversed(asked), strict=True):
        assert clip["start"] == pytest.approx(wanted["start"], abs=0.01)
        assert clip["end"] == pytest.approx(wanted["end"], abs=0.01)
        assert (clip["score"], clip["reason"]) == (wanted["score"], wanted["reason"])
        assert clip["text"] and clip["text"].split()[0] in HEARD
        assert_clip(ctx.workdir / clip["name"], clip, (1080, 1080))


def test_a_bad_llm_answer_is_asked_again_once_then_fails_clearly(sources, tmp_path):
    with openai_server.OpenAIServer(transcript_text=HEARD) as server:
        late = {"clips": [{"start": 5, "end": 999, "title": "Late", "score": 0.5, "reason": "too far"}]}
        server.queue(
            "/v1/chat/completions", openai_server.chat_reply("not json at all"), openai_server.chat_reply(late)
        )
        settings = make_settings(tmp_path, **server.settings())
        ctx = context(tmp_path, settings, "bad-llm", uploads={TALK_ID: sources["talk"]})
        with pytest.raises(errors.PermanentError) as failure:
            run({"source": {"upload_id": TALK_ID}, "min_s": 2, "max_s": 3}, ctx)
        chats = server.requests_to("/v1/chat/completions")

    assert len(chats) == 2, "one re-ask, no more"
    again = chats[1].json["messages"]
    assert again[-2] == {"role": "assistant", "content": "not json at all"}
    assert again[-1]["content"].startswith("That answer is invalid")
    message = str(failure.value)
    assert "invalid twice" in message and "end 999" in message, message
    assert [a["kind"] for a in ctx.artifacts] == [], "no clip and no placeholder"


# Grounding (pure functions, no media)


def test_adjacent_llm_clips_at_a_rounded_cue_edge_are_both_kept():
    cues = [captions.Cue(0.0, 5.5118, "one"), captions.Cue(5.5118, 11.02, "two"), captions.Cue(11.02, 16.5, "three")]
    # As the LLM saw them: "[0.00-5.51] one", "[5.51-11.02] two". The first clip's end snaps
    # to its cue's exact end; the second starts at the printed, rounded time.
    asked = [segments.Segment(0.0, 2.0, 0.8, "short"), segments.Segment(5.51, 16.0, 0.9, "long")]
    chosen = segments.ground(asked, 20.0, 2.0, 12.0, cues, 2)
    assert [(s.start, s.end, s.reason) for s in chosen] == [(0.0, 5.512, "short"), (5.512, 16.5, "long")]


def test_grounding_keeps_a_clip_inside_the_video_when_a_cue_runs_past_its_end():
    cues = [captions.Cue(17.0, 21.0, "the last words run on after the picture ends")]
    [chosen] = segments.ground([segments.Segment(15.0, 18.0, 0.5, "end")], 20.0, 2.0, 6.0, cues, 1)
    assert (chosen.start, chosen.end) == (15.0, 20.0)


# Errors before any work


def test_an_unreachable_source_is_a_retryable_error(tmp_path):
    ctx = context(tmp_path, make_settings(tmp_path), "unreachable")
    url = f"http://127.0.0.1:{closed_port()}/talk.mp4"
    with pytest.raises(errors.RetryableError, match="the source could not be reached"):
        run({"source": {"url": url}}, ctx)


def test_a_private_source_is_refused_naming_the_setting(media_site, tmp_path):
    ctx = context(tmp_path, make_settings(tmp_path, CONVEYOR_ALLOW_PRIVATE_URLS=0), "private")
    asked_before = len(media_site.paths)
    with pytest.raises(errors.PermanentError, match=r"private address.*CONVEYOR_ALLOW_PRIVATE_URLS=1"):
        run({"source": {"url": media_site.url("talk.mp4")}}, ctx)
    assert len(media_site.paths) == asked_before, "nothing was fetched from the private host"


@pytest.mark.parametrize("given", ["url", "upload"])
def test_a_source_over_the_length_limit_is_refused_naming_the_limit(given, sources, media_site, tmp_path):
    ctx = context(tmp_path, make_settings(tmp_path, CONVEYOR_SOURCE_MAX_SECONDS=10), given, {TALK_ID: sources["talk"]})
    source = {"url": media_site.url("talk.mp4")} if given == "url" else {"upload_id": TALK_ID}
    too_long = r"lasts 20 s, over the limit of 10 s \(CONVEYOR_SOURCE_MAX_SECONDS\)"
    with pytest.raises(errors.PermanentError, match=too_long):
        run({"source": source, "min_s": 2, "max_s": 3}, ctx)
    assert list((ctx.workdir / "source").glob("source.*")) == [], "a refused download leaves no file"


def test_captions_without_any_transcript_fail_clearly(sources, tmp_path):
    ctx = context(tmp_path, make_settings(tmp_path), "no-transcript", {PLAIN_ID: sources["plain"]})
    with pytest.raises(errors.PermanentError) as failure:
        run({"source": {"upload_id": PLAIN_ID}, "min_s": 1, "max_s": 2}, ctx)
    message = str(failure.value)
    assert "no transcript" in message and "OPENAI_API_KEY" in message and "subtitles to false" in message
    assert ctx.artifacts == []


# Cancel


def test_cancel_while_rendering_stops_ffmpeg_within_two_seconds(sources, tmp_path):
    ctx = context(tmp_path, make_settings(tmp_path), "cancel", {TALK_ID: sources["talk"]})
    ended: list[BaseException | dict] = []

    def work() -> None:
        try:
            ended.append(run({"source": {"upload_id": TALK_ID}, "max_clips": 1, "min_s": 8, "max_s": 10}, ctx))
        except BaseException as exc:
            ended.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    # Past the stage's first report (70%), so ffmpeg itself is reporting its progress.
    wait_for(
        lambda: any(stage == "rendering" and pct > 70 for pct, stage, _ in list(ctx.reports)) or ended,
        timeout=60,
        interval=0.02,
        message="ffmpeg to report rendering progress",
    )
    assert not ended, f"the run ended before rendering: {ended}"
    running = ffmpeg_children()
    assert running and ctx.tracked(), "ffmpeg is rendering"
    asked = time.monotonic()
    ctx.cancel()
    worker.join(5)
    waited = time.monotonic() - asked

    assert ended and isinstance(ended[0], errors.Cancelled), ended
    assert waited < 2.0, f"stopped {waited:.2f}s after the cancel"
    assert ctx.tracked() == []
    assert ffmpeg_children() == []
    assert not any(pathlib.Path(f"/proc/{pid}").exists() for pid in running), "ffmpeg was reaped"
    assert [a["kind"] for a in ctx.artifacts] == []


# Through the API and a real worker


def upload(client, headers: dict, path: pathlib.Path) -> dict:
    # Encoded in memory: for a body over 500 kB the test client spools to a temporary file it
    # never closes (a ResourceWarning, which this suite makes an error).
    given = werkzeug.datastructures.FileStorage(io.BytesIO(path.read_bytes()), path.name)
    boundary, body = werkzeug.test.encode_multipart({"file": given})
    form = f"multipart/form-data; boundary={boundary}"
    answer = client.post("/api/uploads", data=body, content_type=form, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["source"]


def submit(client, headers: dict, params: dict) -> str:
    answer = client.post("/api/tasks", json={"type": "video_clip", "params": params}, headers=headers)
    assert answer.status_code == 202, answer.get_json()
    return answer.get_json()["task_id"]


def task_events(client, headers: dict, task_id: str) -> list[dict]:
    return client.get(f"/api/tasks/{task_id}/events?format=json&limit=5000", headers=headers).get_json()["items"]


def wait_ended(client, headers: dict, task_id: str, timeout: float = 120) -> dict:
    def ended():
        task = client.get(f"/api/tasks/{task_id}", headers=headers).get_json()
        return task if task["status"] in TERMINAL else None

    return wait_for(ended, timeout, interval=0.2, message=f"task {task_id} to end")


def download(client, headers: dict, artifact: dict, out: pathlib.Path) -> pathlib.Path:
    with client.get(artifact["url"], headers=headers) as answer:
        assert answer.status_code == 200 and answer.mimetype == "video/mp4"
        out.write_bytes(answer.data)
    return out


@pytest.mark.embedded
def test_api_run_emits_one_artifact_event_per_clip(backend, client, keys, processes, sources, tmp_path):
    member = bearer(keys["a_member"])
    processes.worker("cpu", concurrency=1)
    source = upload(client, member, sources["talk"])
    params = {"source": source, "max_clips": 2, "min_s": 2, "max_s": 3, "aspect": "original"}
    task_id = submit(client, member, params)
    task = wait_ended(client, member, task_id)
    assert task["status"] == "succeeded", task["error"]

    clips = task["result"]["clips"]
    assert len(clips) == 2 and task["result"]["transcript_origin"] == "embedded_subtitles"
    events = task_events(client, member, task_id)
    stored = [e for e in events if e["kind"] == "artifact"]
    clip_events = [e for e in stored if e["data"]["kind"] == "clip"]
    assert [e["data"]["id"] for e in clip_events] == [c["artifact"] for c in clips], "one event per clip, in order"
    assert [e["data"]["kind"] for e in stored] == ["clip", "clip", "transcript", "analysis"]
    assert events[-1]["kind"] == "status" and events[-1]["data"]["status"] == "succeeded"
    assert max(e["id"] for e in stored) < events[-1]["id"], "every artifact was announced before the end"

    listed = {a["id"]: a for a in client.get(f"/api/tasks/{task_id}/artifacts", headers=member).get_json()}
    assert sorted(a["kind"] for a in listed.values()) == ["analysis", "clip", "clip", "transcript"]
    for clip in clips:
        artifact = listed[clip["artifact"]]
        assert artifact["name"] == clip["name"] and artifact["mime"] == "video/mp4"
        assert artifact["metadata"] == {k: v for k, v in clip.items() if k not in ("artifact", "name")}
        assert_clip(download(client, member, artifact, tmp_path / clip["name"]), clip, (640, 360))


def test_a_retry_after_a_worker_died_leaves_one_set_of_clips(backend, app, client, keys, processes, sources):
    member = bearer(keys["a_member"])

    def choose(body: dict) -> dict:
        # A short clip, then a long one: the worker is killed while the long one renders.
        lines = transcript_lines(body)
        second = lines[1][0]
        clips = [
            {"start": lines[0][0], "end": lines[0][0] + 2, "title": "Short", "score": 0.8, "reason": "first"},
            {"start": second, "end": min(SECONDS, second + 12), "title": "Long", "score": 0.9, "reason": "second"},
        ]
        return {"clips": clips}

    with openai_server.OpenAIServer(chat=choose, transcript_text=HEARD) as server:
        processes.env.update(server.settings())
        processes.env["CONVEYOR_POLICIES"] = json.dumps({"video_clip": {"backoff_base": 1}})
        first = processes.worker("cpu", concurrency=1)
        processes.sweeper()
        params = {"source": upload(client, member, sources["talk"]), "max_clips": 2, "min_s": 2, "max_s": 12}
        task_id = submit(client, member, {**params, "aspect": "original"})

        def first_clip_stored():
            return any(e["kind"] == "artifact" for e in task_events(client, member, task_id))

        wait_for(first_clip_stored, timeout=90, interval=0.05, message="attempt 1 to store a clip")
        processes.kill(first, signal.SIGKILL)
        _kill_orphans(f"/work/{task_id}/1/")
        assert client.get(f"/api/tasks/{task_id}", headers=member).get_json()["status"] == "running"
        store = runtime.current().storage
        assert f"tasks/{task_id}/1/clip-01.mp4" in store.list(f"tasks/{task_id}/1/"), "attempt 1 stored a clip"
        processes.worker("cpu", concurrency=1)
        task = wait_ended(client, member, task_id)
        chats = len(server.requests_to("/v1/chat/completions"))

    assert task["status"] == "succeeded", task["error"]
    assert task["attempt"] == 2 and chats == 2
    lost = [e for e in task_events(client, member, task_id) if e["kind"] == "status" and "error" in e["data"]]
    assert [e["data"]["error"]["type"] for e in lost] == ["LeaseExpired"]
    listed = client.get(f"/api/tasks/{task_id}/artifacts", headers=member).get_json()
    assert {a["attempt"] for a in listed} == {2}
    assert sorted(a["name"] for a in listed) == ["analysis.json", "clip-01.mp4", "clip-02.mp4", "transcript.json"]
    assert [c["title"] for c in task["result"]["clips"]] == ["Short", "Long"]
    assert sorted(c["artifact"] for c in task["result"]["clips"]) == sorted(
        a["id"] for a in listed if a["kind"] == "clip"
    )
    assert store.list(f"tasks/{task_id}/1/") == [], "attempt 1's files are gone"
    assert len(store.list(f"tasks/{task_id}/2/")) == 4


def _kill_orphans(marker: str) -> None:
    """SIGKILL the ffmpeg a killed worker left behind (it runs in a session of its own), found by
    its workdir in its command line."""
    for cmdline in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ffmpeg") and any(marker.encode() in arg for arg in argv):
            try:
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize(
    "said, title",
    [
        (
            "So today we are going to talk about how river otters hold hands while they sleep.",
            "River otters hold hands",
        ),
        ("Okay, um, the quarterly revenue grew by twelve percent this year.", "Quarterly revenue grew"),
        ("Today we cut long videos into short ones.", "Cut long videos"),
    ],
)
def test_a_clip_without_an_llm_is_titled_by_its_key_phrase(said, title):
    assert phrases.key_phrase(said) == title


def test_a_clip_with_nothing_said_is_titled_by_the_source_and_its_span():
    assert titles.title("", "Otters at dusk", 65.2, 95.9) == "Otters at dusk 1:05-1:35"
    assert titles.title("yes, okay, um", None, 3725, 3755) == "Clip 1:02:05-1:02:35"
