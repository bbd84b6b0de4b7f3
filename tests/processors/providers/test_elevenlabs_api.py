"""The ElevenLabs adapter, with the real elevenlabs SDK over real HTTP against the fake server."""

import json
import subprocess
import time

import pytest

from app import config
from processors import errors
from processors.providers import elevenlabs_api
from tests import fakes
from tests.fakes import elevenlabs_server

RACHEL = "21m00Tcm4TlvDq8ikWAM"
TTS = "/v1/text-to-speech/{voice_id}"


@pytest.fixture
def server():
    with elevenlabs_server.ElevenLabsServer() as fake:
        yield fake


@pytest.fixture
def provider_settings(server) -> dict:
    return config.load(
        {}, {**server.settings(), "ELEVENLABS_MODEL": "eleven_test_model", "CONVEYOR_PROVIDER_RETRIES": "1"}
    )


def _probe(path) -> dict:
    argv = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json", str(path)]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def test_speak_writes_the_mp3_the_service_sent(server, provider_settings, tmp_path):
    out = elevenlabs_api.speak(provider_settings, "Otters hold hands while they sleep.", RACHEL, tmp_path / "v.mp3")

    info = _probe(out)
    assert info["streams"][0]["codec_name"] == "mp3"
    assert float(info["format"]["duration"]) > 0.5
    assert not (tmp_path / "v.mp3.part").exists()
    (request,) = server.requests
    assert request.path == f"/v1/text-to-speech/{RACHEL}"
    assert request.headers["xi-api-key"] == server.api_key
    assert request.query["output_format"] == ["mp3_44100_128"]
    assert request.json["text"] == "Otters hold hands while they sleep."
    assert request.json["model_id"] == "eleven_test_model"


def test_speak_raw_pcm_format_and_model_argument(server, provider_settings, tmp_path):
    out = elevenlabs_api.speak(
        provider_settings, "One two three four five.", RACHEL, tmp_path / "v.pcm", model="m2", output_format="pcm_16000"
    )

    seconds = 1.5  # the fake speaks 0.3 s a word
    assert out.stat().st_size == int(seconds * 16000) * 2
    assert server.requests[0].json["model_id"] == "m2"
    assert server.requests[0].query["output_format"] == ["pcm_16000"]


def test_wrong_key_is_permanent_and_not_printed(server, provider_settings, tmp_path):
    wrong = "not-the-right-key-0123456789abcdefghijklmnop"

    with pytest.raises(errors.PermanentError) as caught:
        elevenlabs_api.speak({**provider_settings, "ELEVENLABS_API_KEY": wrong}, "Hi.", RACHEL, tmp_path / "v.mp3")

    message = str(caught.value)
    assert "401" in message and "ELEVENLABS_API_KEY" in message and "Invalid API key" in message
    assert wrong not in message
    assert len(server.requests) == 1
    assert not (tmp_path / "v.mp3").exists()


def test_unknown_voice_is_permanent_with_the_providers_message(server, provider_settings, tmp_path):
    with pytest.raises(errors.PermanentError) as caught:
        elevenlabs_api.speak(provider_settings, "Hi.", "no-such-voice", tmp_path / "v.mp3")

    assert "A voice with the voice_id no-such-voice was not found." in str(caught.value)
    assert "voice_not_found" in str(caught.value)
    assert len(server.requests) == 1


def test_rate_limit_waits_for_retry_after_then_succeeds(server, provider_settings, tmp_path):
    server.queue(
        TTS,
        elevenlabs_server.error(
            429, "Too many concurrent requests", status_name="too_many_concurrent_requests", retry_after=1
        ),
    )

    out = elevenlabs_api.speak(provider_settings, "Hello there.", RACHEL, tmp_path / "v.mp3")

    assert out.stat().st_size > 1000
    first, second = server.requests
    assert second.time - first.time >= 0.95


def test_sdk_retries_are_off(server, provider_settings, tmp_path):
    failure = elevenlabs_server.error(500, "internal error")
    server.queue(TTS, failure, failure, failure)

    with pytest.raises(errors.RetryableError, match="internal error"):
        elevenlabs_api.speak({**provider_settings, "CONVEYOR_PROVIDER_RETRIES": 0}, "Hi.", RACHEL, tmp_path / "v.mp3")

    assert len(server.requests) == 1


def test_voices_are_listed_with_language_and_gender(server, provider_settings):
    listed = elevenlabs_api.voices(provider_settings)

    by_id = {voice.id: voice for voice in listed}
    assert set(by_id) == {v["voice_id"] for v in elevenlabs_server.DEFAULT_VOICES}
    rachel = by_id[RACHEL]
    assert (rachel.name, rachel.provider, rachel.language, rachel.gender) == ("Rachel", "elevenlabs", "en", "female")
    assert by_id["pNInz6obpgDQGcFmaJgB"].language == "en"  # from verified_languages: no language label
    assert server.requests[0].path == "/v2/voices"


def test_voices_follow_every_page(server, provider_settings):
    server.voices = [{"voice_id": f"voice{n:04d}", "name": f"Voice {n}", "labels": {}} for n in range(230)]

    listed = elevenlabs_api.voices(provider_settings)

    assert [v.id for v in listed] == [f"voice{n:04d}" for n in range(230)]
    assert len(server.requests) == 3


def test_voices_failure_is_retryable_after_one_attempt(server, provider_settings):
    server.queue("/v2/voices", elevenlabs_server.error(503, "busy"))

    started = time.monotonic()
    with pytest.raises(errors.RetryableError, match="503"):
        elevenlabs_api.voices(provider_settings, attempts=1)

    assert time.monotonic() - started < 1
    assert len(server.requests) == 1


def test_missing_key_is_permanent_without_a_request(server, provider_settings, tmp_path):
    with pytest.raises(errors.PermanentError, match="ELEVENLABS_API_KEY is not set"):
        elevenlabs_api.speak({**provider_settings, "ELEVENLABS_API_KEY": ""}, "Hi.", RACHEL, tmp_path / "v.mp3")

    assert server.requests == []


def test_slow_answer_times_out_as_retryable(server, provider_settings, tmp_path):
    server.queue(TTS, fakes.Response(body=b"late", content_type="audio/mpeg", delay=2.5))
    settings = {**provider_settings, "CONVEYOR_PROVIDER_TIMEOUT_SECONDS": 1, "CONVEYOR_PROVIDER_RETRIES": 0}

    started = time.monotonic()
    with pytest.raises(errors.RetryableError, match="timed out"):
        elevenlabs_api.speak(settings, "Hi.", RACHEL, tmp_path / "v.mp3")

    assert time.monotonic() - started < 2.4
    assert not (tmp_path / "v.mp3").exists()
