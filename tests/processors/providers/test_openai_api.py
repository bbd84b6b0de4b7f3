"""The OpenAI-compatible adapters, with the real openai SDK over real HTTP against the fake
server, and the retry rules they share (`processors.providers.retry`)."""

import base64
import io
import json
import subprocess
import threading
import time

import pydantic
import pytest
from PIL import Image

from app import config
from processors import base, errors
from processors.providers import openai_api, retry
from tests import fakes
from tests.fakes import openai_server

CHAT = "/v1/chat/completions"


class Outline(pydantic.BaseModel):
    title: str
    points: list[int]


@pytest.fixture
def provider_settings(server) -> dict:
    return config.load(
        {},
        {**server.settings(), "CONVEYOR_LLM_MODEL": "test-llm", "CONVEYOR_PROVIDER_RETRIES": "1"},
    )


MESSAGES = [{"role": "user", "content": "Outline a talk about otters."}]


def test_chat_json_returns_the_validated_answer_and_usage(server, provider_settings):
    server.queue(CHAT, openai_server.chat_reply({"title": "Otters", "points": [1, 2, 3]}, model="test-llm-0613"))

    answer = openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert answer.value == Outline(title="Otters", points=[1, 2, 3])
    assert answer.model == "test-llm-0613"
    assert answer.usage["completion_tokens"] > 0
    assert answer.usage["total_tokens"] == answer.usage["prompt_tokens"] + answer.usage["completion_tokens"]
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {server.api_key}"
    assert request.json["model"] == "test-llm"
    assert request.json["messages"] == MESSAGES
    form = request.json["response_format"]
    assert form["type"] == "json_schema"
    assert form["json_schema"]["name"] == "Outline"
    assert form["json_schema"]["strict"] is True
    assert set(form["json_schema"]["schema"]["properties"]) == {"title", "points"}


def test_chat_json_model_argument_overrides_the_setting(server, provider_settings):
    openai_api.chat_json(provider_settings, MESSAGES, Outline, model="other-model")

    assert server.requests[0].json["model"] == "other-model"


def test_invalid_json_is_an_invalid_answer_with_problems(server, provider_settings):
    server.queue(CHAT, openai_server.chat_reply('{"title": "Otters", "points": [1,'))

    with pytest.raises(openai_api.InvalidAnswer) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert isinstance(caught.value, errors.PermanentError)
    assert len(caught.value.problems) == 1
    assert "Invalid JSON" in caught.value.problems[0]
    assert caught.value.content == '{"title": "Otters", "points": [1,'
    assert caught.value.usage["total_tokens"] > 0


def test_schema_mismatch_is_an_invalid_answer_naming_each_field(server, provider_settings):
    server.queue(CHAT, openai_server.chat_reply({"points": [1, "many"]}))

    with pytest.raises(openai_api.InvalidAnswer) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    problems = caught.value.problems
    assert any(p.startswith("title:") and "required" in p for p in problems), problems
    assert any(p.startswith("points.1:") and "integer" in p for p in problems), problems
    assert "points.1" in str(caught.value)


def test_refusal_is_permanent_and_carries_the_refusal_text(server, provider_settings):
    server.queue(CHAT, openai_server.chat_reply(None, refusal="I can't help with that request."))

    with pytest.raises(errors.PermanentError) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert not isinstance(caught.value, openai_api.InvalidAnswer)
    assert "I can't help with that request." in str(caught.value)


def test_cut_off_answer_is_an_invalid_answer(server, provider_settings):
    server.queue(CHAT, openai_server.chat_reply('{"title": "Ott', finish_reason="length"))

    with pytest.raises(openai_api.InvalidAnswer) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert "token limit" in caught.value.problems[0]


def test_rate_limit_waits_for_retry_after_then_succeeds(server, provider_settings):
    server.queue(CHAT, openai_server.error(429, "Rate limit reached", code="rate_limit_exceeded", retry_after=1))

    answer = openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert answer.value.title == "text"  # the fake's default answer, from the schema
    first, second = server.requests_to(CHAT)
    assert second.time - first.time >= 0.95


def test_server_errors_until_attempts_run_out_are_retryable(server, provider_settings):
    failure = openai_server.error(500, "The server had an error while processing your request.")
    server.queue(CHAT, failure, failure, failure)

    started = time.monotonic()
    with pytest.raises(errors.RetryableError) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert len(server.requests) == 2  # CONVEYOR_PROVIDER_RETRIES=1: one retry, after a backoff
    assert retry.BACKOFF_BASE * 0.5 <= time.monotonic() - started < 5
    assert "The server had an error" in str(caught.value)
    assert caught.value.retry_after is None


def test_sdk_retries_are_off(server, provider_settings):
    server.queue(CHAT, openai_server.error(503, "overloaded"), openai_server.error(503, "overloaded"))

    with pytest.raises(errors.RetryableError):
        openai_api.chat_json({**provider_settings, "CONVEYOR_PROVIDER_RETRIES": 0}, MESSAGES, Outline)

    assert len(server.requests) == 1


def test_last_retry_after_is_passed_on(server, provider_settings):
    limited = openai_server.error(429, "Rate limit reached", retry_after=1)
    server.queue(CHAT, limited, limited)

    with pytest.raises(errors.RetryableError) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert caught.value.retry_after == 1.0
    assert len(server.requests) == 2


def test_long_retry_after_gives_up_at_once_for_the_task_policy(server, provider_settings):
    server.queue(CHAT, openai_server.error(429, "Quota window", retry_after=3600))

    started = time.monotonic()
    with pytest.raises(errors.RetryableError) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert time.monotonic() - started < 2
    assert caught.value.retry_after == 3600
    assert len(server.requests) == 1


def test_bad_request_is_permanent_at_once(server, provider_settings):
    server.queue(
        CHAT, openai_server.error(400, "Invalid schema for response_format 'Outline'.", param="response_format")
    )

    with pytest.raises(errors.PermanentError) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert "Invalid schema for response_format 'Outline'." in str(caught.value)
    assert "400" in str(caught.value)
    assert len(server.requests) == 1


def test_wrong_key_is_permanent_and_not_printed(server, provider_settings):
    wrong = "sk-wrong-secret-value-abcdefghijklmnop"

    with pytest.raises(errors.PermanentError) as caught:
        openai_api.chat_json({**provider_settings, "OPENAI_API_KEY": wrong}, MESSAGES, Outline)

    message = str(caught.value)
    assert "OPENAI_API_KEY" in message
    assert "401" in message
    assert "sk-" not in message and wrong[-4:] not in message
    assert len(server.requests) == 1


def test_missing_key_is_permanent_without_a_request(server, provider_settings):
    with pytest.raises(errors.PermanentError, match="OPENAI_API_KEY is not set"):
        openai_api.chat_json({**provider_settings, "OPENAI_API_KEY": None}, MESSAGES, Outline)

    assert server.requests == []


def test_cancel_interrupts_a_retry_wait(server, provider_settings, tmp_path):
    server.queue(CHAT, openai_server.error(429, "Rate limit reached", retry_after=30))
    ctx = base.Context("t-1", 1, tmp_path, settings=provider_settings)
    threading.Timer(0.3, ctx.cancel).start()

    started = time.monotonic()
    with pytest.raises(errors.Cancelled):
        openai_api.chat_json(provider_settings, MESSAGES, Outline, ctx=ctx)

    assert time.monotonic() - started < 2
    assert any("attempt 2 of 2" in line for line in ctx.logs)


def test_unreachable_server_is_retryable(provider_settings):
    with openai_server.OpenAIServer() as gone:
        url = gone.settings()["OPENAI_BASE_URL"]  # a port nobody listens on once it stops
    settings = {**provider_settings, "OPENAI_BASE_URL": url, "CONVEYOR_PROVIDER_RETRIES": 0}

    with pytest.raises(errors.RetryableError, match="could not connect"):
        openai_api.chat_json(settings, MESSAGES, Outline)


def test_slow_answer_times_out_as_retryable(server, provider_settings):
    server.queue(CHAT, fakes.Response(json={}, delay=2.5))
    settings = {**provider_settings, "CONVEYOR_PROVIDER_TIMEOUT_SECONDS": 1, "CONVEYOR_PROVIDER_RETRIES": 0}

    started = time.monotonic()
    with pytest.raises(errors.RetryableError, match="timed out"):
        openai_api.chat_json(settings, MESSAGES, Outline)

    assert time.monotonic() - started < 2.4


def test_retry_after_forms():
    assert retry.retry_after({"Retry-After": "7"}) == 7.0
    assert retry.retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry.retry_after({}) is None
    assert retry.retry_after({"Retry-After": "soon"}) is None
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 27 <= retry.retry_after({"Retry-After": later}) <= 31


def test_generate_image_returns_a_png_and_the_revised_prompt(server, provider_settings):
    image = openai_api.generate_image(provider_settings, "an otter reading", size="1024x1792", quality="hd")

    with Image.open(io.BytesIO(image.png_bytes)) as picture:
        assert picture.format == "PNG"
        assert picture.size == (1024, 1792)
    assert image.revised_prompt == "Revised: an otter reading"
    assert image.model == "dall-e-3"
    body = server.requests[0].json
    assert body["response_format"] == "b64_json"
    assert (body["size"], body["quality"], body["n"], body["model"]) == ("1024x1792", "hd", 1, "dall-e-3")
    assert "style" not in body


def test_generate_image_converts_other_formats_to_png(server, provider_settings):
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 10, 10)).save(jpeg, format="JPEG")
    data = {"created": 1, "data": [{"b64_json": base64.b64encode(jpeg.getvalue()).decode(), "revised_prompt": None}]}
    server.queue("/v1/images/generations", fakes.Response(json=data))

    image = openai_api.generate_image(provider_settings, "red", size="1024x1024")

    with Image.open(io.BytesIO(image.png_bytes)) as picture:
        assert (picture.format, picture.size) == ("PNG", (64, 32))


def test_content_policy_refusal_is_permanent_with_the_providers_message(server, provider_settings):
    message = (
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed."
    )
    server.queue("/v1/images/generations", openai_server.content_policy_error(message))

    with pytest.raises(errors.PermanentError) as caught:
        openai_api.generate_image(provider_settings, "something forbidden", size="1024x1024", quality="standard")

    assert message in str(caught.value)
    assert len(server.requests) == 1


def test_transcribe_returns_words_with_float_times(server, provider_settings, tmp_path):
    audio = tmp_path / "speech.wav"
    audio.write_bytes(fakes.sine_wav(3.0, 16000))

    transcript = openai_api.transcribe(provider_settings, audio, language="en")

    assert transcript.text == openai_server.DEFAULT_TRANSCRIPT
    assert transcript.language == "english"
    assert transcript.duration == pytest.approx(3.0, abs=0.05)
    assert [w.text for w in transcript.words][:3] == ["Hello", "and", "welcome"]
    for word in transcript.words:
        assert isinstance(word.start, float) and isinstance(word.end, float)
        assert 0 <= word.start < word.end <= 3.0 + 1e-6
    assert [s.text for s in transcript.segments] == [
        "Hello and welcome.",
        "This is a fake transcript for tests.",
        "It ends here.",
    ]
    assert transcript.segments[-1].end == pytest.approx(3.0, abs=0.01)
    request = server.requests[0]
    assert request.form["model"] == "whisper-1"
    assert request.form["response_format"] == "verbose_json"
    assert request.form["language"] == "en"
    assert set(request.form["timestamp_granularities[]"].split(",")) == {"word", "segment"}
    assert request.files["file"] == ("speech.wav", audio.read_bytes())


def test_transcribe_missing_file_is_permanent(provider_settings, tmp_path):
    with pytest.raises(errors.PermanentError, match="does not exist"):
        openai_api.transcribe(provider_settings, tmp_path / "nothing.wav")


def test_speak_writes_a_wav_ffprobe_reads(server, provider_settings, tmp_path):
    out = openai_api.speak(provider_settings, "Otters hold hands while they sleep.", "nova", tmp_path / "a" / "x.wav")

    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=format_name,duration",
            "-of",
            "json",
            out,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(probe.stdout)
    assert info["format"]["format_name"] == "wav"
    assert info["streams"][0]["codec_name"] == "pcm_s16le"
    assert float(info["format"]["duration"]) > 0.5
    assert not (tmp_path / "a" / "x.wav.part").exists()
    body = server.requests[0].json
    assert (body["voice"], body["model"], body["response_format"]) == ("nova", "tts-1", "wav")
    assert body["input"] == "Otters hold hands while they sleep."


def test_speak_unknown_voice_is_permanent(server, provider_settings, tmp_path):
    with pytest.raises(errors.PermanentError, match="voice"):
        openai_api.speak(provider_settings, "Hi.", "nobody", tmp_path / "x.wav")

    assert not (tmp_path / "x.wav").exists()


def test_voices_are_openais_names():
    listed = openai_api.voices()

    assert [v.id for v in listed] == list(openai_api.VOICES)
    assert {v.provider for v in listed} == {"openai"}


def test_fake_answers_from_a_responder_given_the_request(provider_settings):
    # The scripting other tests rely on: a chat responder, and `on` replacing a route's answer.
    def echo(body: dict) -> dict:
        return {"title": body["messages"][-1]["content"].upper(), "points": [len(body["messages"])]}

    with openai_server.OpenAIServer(chat=echo) as fake:
        settings = {**provider_settings, **fake.settings()}
        answer = openai_api.chat_json(settings, MESSAGES, Outline)
        fake.on(CHAT, lambda request: openai_server.chat_reply({"title": request.path, "points": []}))
        replaced = openai_api.chat_json(settings, MESSAGES, Outline)

    assert answer.value == Outline(title="OUTLINE A TALK ABOUT OTTERS.", points=[1])
    assert replaced.value == Outline(title=CHAT, points=[])


# Servers users run offline, answering as their projects' issues record them:
# - llama.cpp's server before JSON-schema support (and ik_llama.cpp, ikawrakow/ik_llama.cpp#778):
#   500 {"error": {"code": 500, "message": "response_format type must be one of \"text\" or
#   \"json_object\", but got: json_schema", "type": "server_error"}};
# - LM Studio 0.4 (Zazza/sd-ai#2): 400 {"error": "'response_format.type' must be 'json_schema' or 'text'"}
#   to JSON mode; here a server refusing both, as builds without grammar support do;
# - Ollama's and llama.cpp's OpenAI-compatible answers may lack `usage`, and models often wrap
#   JSON-mode answers in a ```json fence.
LLAMA_CPP_OLD = 'response_format type must be one of "text" or "json_object", but got: json_schema'
LM_STUDIO = {"error": "'response_format.type' must be 'json_schema' or 'text'"}


def _without_usage(content: str) -> fakes.Response:
    reply = openai_server.chat_reply(content, model="llama-3.1-8b")
    return fakes.Response(json={key: value for key, value in reply.json.items() if key != "usage"})


def test_a_server_without_json_schema_is_asked_in_json_mode_with_the_schema_in_the_prompt(server, provider_settings):
    fenced = '```json\n{"title": "Otters", "points": [1, 2]}\n```'
    server.queue(CHAT, openai_server.error(500, LLAMA_CPP_OLD), _without_usage(fenced), _without_usage(fenced))

    first = openai_api.chat_json(provider_settings, MESSAGES, Outline)
    again = openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert first.value == again.value == Outline(title="Otters", points=[1, 2])
    assert first.model == "llama-3.1-8b" and first.usage == {
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
    }
    refused, json_mode, remembered = server.requests_to(CHAT)
    assert refused.json["response_format"]["type"] == "json_schema"
    assert json_mode.json["response_format"] == {"type": "json_object"}
    schema = json_mode.json["messages"][-1]
    assert schema["role"] == "system" and '"points"' in schema["content"] and "JSON Schema" in schema["content"]
    assert json_mode.json["messages"][:-1] == MESSAGES
    assert remembered.json["response_format"] == {"type": "json_object"}, "the refusal is remembered"


def test_a_server_refusing_json_mode_too_gets_the_schema_in_the_prompt_and_is_validated(server, provider_settings):
    refusal = fakes.Response(status=400, json=LM_STUDIO)
    server.queue(CHAT, openai_server.error(500, LLAMA_CPP_OLD), refusal, _without_usage('{"title": "Otters"}'))

    with pytest.raises(openai_api.InvalidAnswer) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert any(p.startswith("points:") for p in caught.value.problems), "validated like a schema answer"
    asked = server.requests_to(CHAT)
    assert [r.json.get("response_format", {}).get("type") for r in asked] == ["json_schema", "json_object", None]


def test_a_bad_request_not_about_the_format_is_permanent_without_falling_back(server, provider_settings):
    server.queue(CHAT, openai_server.error(400, "model 'nope' not found", code="model_not_found"))

    with pytest.raises(errors.PermanentError, match="not found"):
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert len(server.requests_to(CHAT)) == 1
