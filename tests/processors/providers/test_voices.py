"""`list_voices`: espeak-ng always, OpenAI and ElevenLabs when their keys are set, with the real
programs and SDKs against the fake servers."""

import json

import pytest

from app import config
from processors.providers import voices
from tests.fakes import elevenlabs_server, openai_server


@pytest.fixture
def openai_fake():
    with openai_server.OpenAIServer() as fake:
        yield fake


@pytest.fixture
def elevenlabs_fake():
    with elevenlabs_server.ElevenLabsServer() as fake:
        yield fake


@pytest.fixture
def both_keys(openai_fake, elevenlabs_fake) -> dict:
    return config.load({}, {**openai_fake.settings(), **elevenlabs_fake.settings()})


def _providers(found: voices.VoiceList) -> set[str]:
    return {voice.provider for voice in found.voices}


def test_without_keys_only_espeak_voices():
    found = voices.list_voices(config.load({}, {}))

    assert _providers(found) == {"espeak"}
    assert "en-us" in {voice.id for voice in found.voices}
    assert found.problems == []


def test_with_both_keys_lists_all_three_providers(both_keys, openai_fake, elevenlabs_fake):
    found = voices.list_voices(both_keys)

    assert _providers(found) == {"espeak", "openai", "elevenlabs"}
    ids = {(voice.provider, voice.id) for voice in found.voices}
    assert ("openai", "alloy") in ids
    assert ("elevenlabs", "21m00Tcm4TlvDq8ikWAM") in ids
    assert found.problems == []
    assert openai_fake.requests == []  # OpenAI's voices are a fixed list
    assert len(elevenlabs_fake.requests) == 1


def test_elevenlabs_failure_is_reported_not_fatal(both_keys, elevenlabs_fake):
    elevenlabs_fake.queue("/v2/voices", elevenlabs_server.error(500, "internal failure"))

    found = voices.list_voices(both_keys)

    assert _providers(found) == {"espeak", "openai"}
    (problem,) = found.problems
    assert problem.startswith("elevenlabs:")
    assert "500" in problem and "internal failure" in problem
    assert len(elevenlabs_fake.requests) == 1  # no backoff waits inside an API request


def test_missing_espeak_is_a_problem_note(both_keys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no espeak-ng on the PATH

    found = voices.list_voices(both_keys)

    assert _providers(found) == {"openai", "elevenlabs"}
    assert found.problems == ["espeak: the `espeak-ng` program is not installed"]


def test_to_dict_is_json_ready(both_keys):
    data = json.loads(json.dumps(voices.list_voices(both_keys).to_dict()))

    assert set(data) == {"voices", "problems"}
    assert set(data["voices"][0]) == {"id", "name", "provider", "language", "gender"}
