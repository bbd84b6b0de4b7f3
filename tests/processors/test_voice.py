"""The `voice` type with each provider (real espeak-ng; OpenAI and ElevenLabs through their fakes
over real HTTP): the reported duration is the file's, captions follow the measured audio, every
format decodes; long text is split; params and provider errors are refused; and one task end to
end through the API and a real worker.
"""

import itertools
import json
import math
import subprocess
import uuid
import wave

import pytest

from app import config
from processors import base, captions, errors, voice
from processors.providers import ffmpeg
from tests import probes
from tests.api import conftest as api_fixtures
from tests.fakes import elevenlabs_server, openai_server
from tests.queue import helpers

SPEECH = "/v1/audio/speech"
SENTENCES = ["Otters hold hands while they sleep.", "They do not drift apart!", "Is that not kind?", "It is."]
TEXT = "  ".join(SENTENCES)
CODECS = {"mp3": "mp3", "wav": "pcm_s16le", "ogg": "vorbis"}

# The API's fixtures (a test client, callers' keys), for the end-to-end test.
client = api_fixtures.client
keys = api_fixtures.keys


@pytest.fixture
def fakes():
    """Both fake speech services, stopped after the test."""
    with openai_server.OpenAIServer() as openai_fake, elevenlabs_server.ElevenLabsServer() as elevenlabs_fake:
        yield openai_fake, elevenlabs_fake


@pytest.fixture
def provider_settings(fakes, tmp_path) -> dict:
    openai_fake, elevenlabs_fake = fakes
    overrides = {**openai_fake.settings(), **elevenlabs_fake.settings()}
    return config.load({"CONVEYOR_VAR_DIR": str(tmp_path / "var")}, overrides)


def _run(params: dict, settings: dict, workdir) -> tuple[dict, base.Context]:
    ctx = base.Context("task-voice", 1, workdir, settings=settings)
    result = voice.VoiceProcessor().run(voice.VoiceProcessor.load_params(params), ctx)
    return result, ctx


def _ffprobe(path) -> tuple[float, list[str]]:
    """Return a file's duration and its audio codecs, straight from ffprobe."""
    argv = ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,codec_type"]
    done = subprocess.run([*argv, "-of", "json", str(path)], capture_output=True, text=True, check=True, timeout=30)
    data = json.loads(done.stdout)
    codecs = [s["codec_name"] for s in data["streams"] if s["codec_type"] == "audio"]
    return float(data["format"]["duration"]), codecs


def _decode_errors(path) -> tuple[int, str]:
    """Decode a whole file with ffmpeg; return its exit status and what it complained about."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr.strip()


def _expected_piece(provider: str, sentence: str, tmp_path) -> float:
    """Return how long a sentence spoken alone lasts, found without the processor."""
    if provider == "espeak":
        out = tmp_path / "alone.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "175", "-p", "50", "-w", str(out), sentence], check=True)
        with wave.open(str(out), "rb") as audio:
            return audio.getnframes() / audio.getframerate()
    # Both fakes send about 0.3 s a word, at least 0.5 s.
    return round(min(30.0, max(0.5, 0.3 * len(sentence.split()))), 1)


def _check_cues(cues: list[captions.Cue], texts: list[str], duration: float) -> None:
    assert [cue.text for cue in cues] == texts
    assert cues[0].start == 0.0
    assert all(cue.start < cue.end for cue in cues)
    for cue, after in itertools.pairwise(cues):
        assert cue.end == after.start, "cues are in order and leave no gap"
    assert abs(cues[-1].end - duration) <= 0.1, (cues[-1].end, duration)


@pytest.mark.parametrize(("provider", "audio_format"), [("espeak", "mp3"), ("openai", "wav"), ("elevenlabs", "ogg")])
def test_duration_captions_and_format_follow_the_audio(provider, audio_format, provider_settings, fakes, tmp_path):
    result, ctx = _run({"text": TEXT, "provider": provider, "format": audio_format}, provider_settings, tmp_path / "w")

    audio, srt, vtt = ctx.artifacts
    assert (audio["kind"], audio["mime"], audio["name"]) == ("audio", voice.MIME[audio_format], f"voice.{audio_format}")
    seconds, codecs = _ffprobe(audio["path"])
    assert abs(result["duration"] - seconds) <= 0.05
    assert audio["metadata"]["duration"] == result["duration"]
    assert codecs == [CODECS[audio_format]]
    assert _decode_errors(audio["path"]) == (0, "")
    level = probes.loudness(audio["path"])
    print(f"\n{provider} {audio_format}: {level:.1f} LUFS (reported {result['loudness']})")
    assert abs(level - ffmpeg.VOICE_LUFS) <= 1.0, "speech is brought to -16 LUFS"
    assert audio["metadata"]["loudness"] == result["loudness"] == pytest.approx(level, abs=0.3)

    assert result["sentences"] == len(SENTENCES) and result["provider"] == provider
    assert (srt["name"], vtt["name"]) == ("voice.srt", "voice.vtt")
    srt_cues, vtt_cues = captions.read(srt["path"]), captions.read(vtt["path"])
    assert srt_cues == vtt_cues
    _check_cues(srt_cues, SENTENCES, seconds)
    # Each cue lasts as long as its sentence does when spoken alone, so together they are the audio.
    pieces = [_expected_piece(provider, sentence, tmp_path) for sentence in SENTENCES]
    for cue, piece in zip(srt_cues, pieces, strict=True):
        assert abs((cue.end - cue.start) - piece) <= 0.06, (cue, piece)
    assert abs(sum(cue.end - cue.start for cue in srt_cues) - result["duration"]) <= 0.1

    reports = [percent for percent, _, _ in ctx.reports]
    assert reports == sorted(reports) and reports[-1] == 100.0
    if provider == "openai":
        assert [r.json["input"] for r in fakes[0].requests_to(SPEECH)] == SENTENCES
    if provider == "elevenlabs":
        assert [r.json["text"] for r in fakes[1].requests] == SENTENCES


def test_long_text_gives_a_cue_per_sentence_and_long_sentences_are_cut_at_spaces(provider_settings, fakes, tmp_path):
    short = [f"Sentence number {n} is short." for n in range(1, 10)]
    # 90 words of 7 letters: 37 of them (295 characters) fit in the 300-character split size.
    long_sentence = " ".join(f"word{n:03d}" for n in range(90)) + "."
    text = " ".join([*short[:5], long_sentence, *short[5:]])

    result, ctx = _run({"text": text, "provider": "openai", "format": "wav"}, provider_settings, tmp_path / "w")

    cues = captions.read(ctx.artifacts[1]["path"])
    cut = [cue.text for cue in cues[5:8]]
    assert [len(piece) for piece in cut] == [295, 295, 128]
    assert " ".join(cut) == long_sentence, "the long sentence is cut at spaces, no word split or lost"
    expected = [*short[:5], *cut, *short[5:]]
    _check_cues(cues, expected, _ffprobe(ctx.artifacts[0]["path"])[0])
    assert result["sentences"] == len(expected) == 12
    assert [r.json["input"] for r in fakes[0].requests_to(SPEECH)] == expected


def test_a_faster_rate_gives_shorter_audio(provider_settings, tmp_path):
    text = "Otters hold hands while they sleep, so that they do not drift apart. They are kind."
    normal, _ = _run({"text": text, "format": "wav", "captions": False}, provider_settings, tmp_path / "a")
    fast, ctx = _run({"text": text, "format": "wav", "captions": False, "rate": 2.0}, provider_settings, tmp_path / "b")

    assert fast["duration"] < 0.7 * normal["duration"], (fast["duration"], normal["duration"])
    assert [a["kind"] for a in ctx.artifacts] == ["audio"], "captions: false writes no caption files"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"text": "Hello.", "provider": "openai", "pitch": 40}, "pitch"),
        ({"text": "Hello.", "provider": "elevenlabs", "pitch": 40}, "pitch"),
        ({"text": " \n\t "}, "text"),
        ({"text": "Hello.", "format": "flac"}, "format"),
        ({"text": "Hello.", "rate": 3.0}, "rate"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params, field):
    with pytest.raises(errors.InvalidParams) as refused:
        voice.VoiceProcessor.load_params(params)

    assert list(refused.value.errors) == [field]


def test_espeak_takes_a_pitch(provider_settings, tmp_path):
    result, _ = _run({"text": "Hello.", "pitch": 80, "format": "wav"}, provider_settings, tmp_path / "w")

    assert result["duration"] > 0.2


def test_a_refused_speech_request_fails_permanently_with_the_provider_message(provider_settings, fakes, tmp_path):
    openai_fake = fakes[0]
    openai_fake.queue(SPEECH, openai_server.error(400, "Input contains words this model will not say."))

    with pytest.raises(errors.PermanentError, match="will not say") as failed:
        _run({"text": TEXT, "provider": "openai"}, provider_settings, tmp_path / "w")

    assert "HTTP 400" in str(failed.value)
    assert len(openai_fake.requests_to(SPEECH)) == 1, "a 400 is not retried"


def test_an_unknown_elevenlabs_voice_fails_permanently(provider_settings, fakes, tmp_path):
    with pytest.raises(errors.PermanentError, match="voice_not_found"):
        _run({"text": TEXT, "provider": "elevenlabs", "voice": "NoSuchVoice"}, provider_settings, tmp_path / "w")

    assert len(fakes[1].requests) == 1


def test_an_unknown_espeak_voice_fails_permanently(provider_settings, tmp_path):
    ctx = base.Context("task-voice", 1, tmp_path / "w", settings=provider_settings)
    params = voice.VoiceProcessor.load_params({"text": TEXT, "voice": "xx-nowhere"})

    with pytest.raises(errors.PermanentError, match=r"espeak-ng has no voice 'xx-nowhere'"):
        voice.VoiceProcessor().run(params, ctx)

    assert ctx.artifacts == []


def test_voice_task_through_the_api_and_a_worker(backend, client, keys, processes, tmp_path):
    member = api_fixtures.bearer(keys["a_member"])
    processes.worker("io", concurrency=1)
    submitted = client.post("/api/voice-generation/generate", json={"params": {"text": TEXT}}, headers=member)
    assert submitted.status_code == 202, submitted.get_json()
    task_id = uuid.UUID(submitted.get_json()["task_id"])

    row = helpers.wait_status(task_id, ("succeeded", "failed"), timeout=60)
    assert row.status == "succeeded", row.error
    listed = client.get(f"/api/tasks/{task_id}/artifacts", headers=member).get_json()
    by_name = {item["name"]: item for item in listed}
    assert sorted((item["kind"], item["name"]) for item in listed) == [
        ("audio", "voice.mp3"),
        ("captions", "voice.srt"),
        ("captions", "voice.vtt"),
    ]

    audio = tmp_path / "downloaded.mp3"
    with client.get(by_name["voice.mp3"]["url"], headers=member) as answer:
        assert answer.status_code == 200 and answer.mimetype == "audio/mpeg"
        audio.write_bytes(answer.data)
    assert _decode_errors(audio) == (0, "")
    seconds, codecs = _ffprobe(audio)
    assert codecs == ["mp3"] and math.isclose(seconds, row.result["duration"], abs_tol=0.05)

    with client.get(by_name["voice.srt"]["url"], headers=member) as answer:
        cues = captions.parse(answer.get_data(as_text=True))
    _check_cues(cues, SENTENCES, seconds)


def test_probe_each_caption_changes_in_a_pause_of_the_speech(provider_settings, tmp_path):
    """Caption timing against the narration: every boundary between two cues falls within
    0.1 s of a pause the audio really has (ffmpeg `silencedetect`), so a caption never
    changes mid-word."""
    _, ctx = _run({"text": TEXT, "format": "wav"}, provider_settings, tmp_path / "w")
    audio, srt, _ = ctx.artifacts
    cues = captions.read(srt["path"])
    offsets = probes.caption_offsets(cues, probes.silences(audio["path"]))
    print(f"\n{len(cues)} cues; boundary to nearest pause (s): {[round(o, 3) for o in offsets]}")
    assert len(offsets) == len(SENTENCES) - 1 >= 2
    assert max(offsets) <= 0.1
