"""The OpenAI-compatible adapters against the wire formats of the servers users run offline
(Ollama, llama.cpp's llama-server, vLLM, LocalAI, Kokoro-FastAPI) and of a streaming-only
service (Alibaba DashScope). Each fake answer copies the shape (field names and structure) of
the source cited above its test; the values are ours."""

import base64
import io
import json
import subprocess
import time

import pydantic
import pytest
from PIL import Image

from app import config
from processors import errors
from processors.providers import openai_api
from tests import fakes
from tests.fakes import openai_server

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Outline a talk about otters."}]
ANSWER = {"title": "Otters", "points": [1, 2, 3]}


class Outline(pydantic.BaseModel):
    title: str
    points: list[int]


@pytest.fixture
def provider_settings(server) -> dict:
    return config.load(
        {},
        {**server.settings(), "CONVEYOR_LLM_MODEL": "llama3.2", "CONVEYOR_PROVIDER_RETRIES": "0"},
    )


# Chat answers


def test_ollama_chat_completion(server, provider_settings):
    # ollama/ollama openai/openai.go (ChatCompletion, ToChatCompletion), served at /v1/chat/completions
    # as docs/api/openai-compatibility.mdx documents: no `refusal`, no `logprobs`,
    # system_fingerprint "fp_ollama", usage from prompt_eval_count and eval_count.
    body = {
        "id": "chatcmpl-627",
        "object": "chat.completion",
        "created": 1741600000,
        "model": "llama3.2",
        "system_fingerprint": "fp_ollama",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": json.dumps(ANSWER)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48},
    }
    server.queue(CHAT, fakes.Response(json=body))

    answer = openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert answer.value == Outline(**ANSWER)
    assert answer.model == "llama3.2"
    assert answer.usage == {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48}
    assert server.requests[0].json["response_format"]["type"] == "json_schema"
    assert "stream" not in server.requests[0].json


def test_llama_cpp_chat_completion(server, provider_settings):
    # ggml-org/llama.cpp tools/server/README.md, POST /v1/chat/completions "Show output" example
    # (now in docs/function-calling.md): keys choices, created, model, object, usage, id, with
    # no system_fingerprint, and the message's content null when it answers with a tool call.
    def reply(content):
        return fakes.Response(
            json={
                "choices": [
                    {"finish_reason": "stop", "index": 0, "message": {"content": content, "role": "assistant"}}
                ],
                "created": 1727287211,
                "model": "gpt-3.5-turbo",
                "object": "chat.completion",
                "usage": {"completion_tokens": 16, "prompt_tokens": 44, "total_tokens": 60},
                "id": "chatcmpl-Htbgh9feMmGM0LEH2hmQvwsCxq3c6Ni8",
            }
        )

    server.queue(CHAT, reply(json.dumps(ANSWER)), reply(None))

    answer = openai_api.chat_json(provider_settings, MESSAGES, Outline)
    with pytest.raises(openai_api.InvalidAnswer, match="empty"):
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert (answer.value, answer.model) == (Outline(**ANSWER), "gpt-3.5-turbo")
    assert answer.usage["total_tokens"] == 60


def test_vllm_chat_completion_with_its_extra_fields(server, provider_settings):
    # vllm-project/vllm vllm/entrypoints/openai/protocol.py (ChatCompletionResponse and
    # ChatMessage): OpenAI's shape plus prompt_logprobs, kv_transfer_params and the message's
    # reasoning_content; tool_calls an empty list.
    body = {
        "id": "chatcmpl-9f0c3",
        "object": "chat.completion",
        "created": 1741600000,
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "reasoning_content": None,
                    "content": json.dumps(ANSWER),
                    "tool_calls": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "usage": {"prompt_tokens": 40, "total_tokens": 60, "completion_tokens": 20, "prompt_tokens_details": None},
        "prompt_logprobs": None,
        "kv_transfer_params": None,
    }
    server.queue(CHAT, fakes.Response(json=body))

    answer = openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert answer.value == Outline(**ANSWER)
    assert answer.usage == {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}


def _ollama_chunks(pieces: list[str], finish_reason: str = "stop") -> list[dict]:
    # ollama/ollama openai/openai.go ToChunk: every delta carries role "assistant"; the last
    # has the finish_reason; usage only comes with stream_options include_usage.
    head = {"id": "chatcmpl-414", "object": "chat.completion.chunk", "created": 1741600000, "model": "llama3.2"}
    chunks = [
        {
            **head,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": p}, "finish_reason": None}],
        }
        for p in pieces
    ]
    chunks[-1]["choices"][0]["finish_reason"] = finish_reason
    return chunks


def test_a_streamed_answer_to_a_request_that_did_not_ask_for_one_is_joined(server, provider_settings):
    # A server (or proxy) that streams whatever was asked: chat.completion.chunk events in
    # Ollama's shape (above), `data: [DONE]` last, and no usage.
    text = json.dumps(ANSWER)
    server.queue(CHAT, openai_server.sse(_ollama_chunks([text[:7], text[7:20], text[20:]])))

    answer = openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert answer.value == Outline(**ANSWER)
    assert answer.content == text
    assert answer.model == "llama3.2"
    assert answer.usage == {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}
    assert len(server.requests) == 1 and "stream" not in server.requests[0].json


def test_a_streamed_answer_cut_off_at_the_token_limit_is_an_invalid_answer(server, provider_settings):
    server.queue(CHAT, openai_server.sse(_ollama_chunks(['{"title": ', '"Ott'], finish_reason="length")))

    with pytest.raises(openai_api.InvalidAnswer) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert caught.value.problems == ["the answer was cut off at the token limit"]
    assert caught.value.content == '{"title": "Ott'


def test_a_streamed_refusal_is_permanent_with_its_text(server, provider_settings):
    # OpenAI's streaming chunks carry a refusal in delta.refusal, in pieces like the content.
    server.queue(CHAT, openai_server.chat_stream(None, refusal="I can't help with that request."))

    with pytest.raises(errors.PermanentError) as caught:
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert not isinstance(caught.value, openai_api.InvalidAnswer)
    assert "I can't help with that request." in str(caught.value)


def test_a_server_that_only_streams_is_asked_again_streaming_and_then_streams_at_once(server, provider_settings):
    # Alibaba DashScope (compatible-mode) for models that only stream, e.g. qwq-plus: a 400 with
    # "This model only support stream mode, please enable the stream parameter to access the
    # model." as quoted in FoundationAgents/OpenManus#216 and infiniflow/ragflow#5912. The
    # streamed answer follows OpenAI's chunk shape with usage in a last, choice-less chunk.
    server.queue(CHAT, openai_server.stream_only_error())
    server.chat = lambda body: ANSWER

    first = openai_api.chat_json(provider_settings, MESSAGES, Outline)
    again = openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert first.value == again.value == Outline(**ANSWER)
    assert first.usage["completion_tokens"] > 0
    assert first.usage["total_tokens"] == first.usage["prompt_tokens"] + first.usage["completion_tokens"]
    refused, streamed, remembered = server.requests_to(CHAT)
    assert "stream" not in refused.json
    assert streamed.json["stream"] is True and streamed.json["stream_options"] == {"include_usage": True}
    assert streamed.json["response_format"]["type"] == "json_schema"
    assert remembered.json["stream"] is True, "the server is remembered as streaming-only"


def test_a_streaming_only_server_without_json_schema_falls_back_to_json_mode_streaming(server, provider_settings):
    # DashScope's refusal (above), then llama.cpp's old refusal of json_schema (see
    # test_openai_api: ikawrakow/ik_llama.cpp#778) on the streamed request.
    old_llama = 'response_format type must be one of "text" or "json_object", but got: json_schema'
    server.queue(CHAT, openai_server.stream_only_error(), openai_server.error(500, old_llama))
    server.chat = lambda body: "```json\n" + json.dumps(ANSWER) + "\n```"

    answer = openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert answer.value == Outline(**ANSWER)
    asked = [(r.json.get("stream"), r.json.get("response_format")) for r in server.requests_to(CHAT)]
    assert asked[0][0] is None and asked[1][0] is True
    assert asked[2] == (True, {"type": "json_object"})


def test_a_bad_request_mentioning_nothing_about_streams_is_not_asked_again(server, provider_settings):
    server.queue(CHAT, openai_server.error(400, "model 'qwq-plus' not found", code="model_not_found"))

    with pytest.raises(errors.PermanentError, match="not found"):
        openai_api.chat_json(provider_settings, MESSAGES, Outline)

    assert len(server.requests_to(CHAT)) == 1


# Speech-to-text

TRANSCRIPTIONS = "/v1/audio/transcriptions"


def _audio(tmp_path):
    audio = tmp_path / "speech.wav"
    audio.write_bytes(fakes.sine_wav(1.0, 16000))
    return audio


def test_vllm_verbose_json_without_words_gets_words_spread_over_each_segment(server, provider_settings, tmp_path):
    # vllm-project/vllm#31059 (and #24209), the verbose_json a Whisper model answers: duration
    # as a string, no `task`, no `words`, segments with null compression_ratio/no_speech_prob.
    segment = {"avg_logprob": -0.1, "compression_ratio": None, "no_speech_prob": None, "seek": 0, "temperature": 0.0}
    body = {
        "duration": "30.0",
        "language": "en",
        "text": " as well as a beginning, signifying renewal. For I have sworn before you.",
        "segments": [
            {
                "id": 0,
                **segment,
                "start": 0.0,
                "end": 7.2,
                "text": " as well as a beginning, signifying renewal.",
                "tokens": [382, 731],
            },
            {
                "id": 1,
                **segment,
                "start": 7.2,
                "end": 10.0,
                "text": " For I have sworn before you.",
                "tokens": [1171, 286],
            },
        ],
    }
    server.queue(TRANSCRIPTIONS, fakes.Response(json=body))

    transcript = openai_api.transcribe(provider_settings, _audio(tmp_path))

    assert transcript.duration == 30.0 and transcript.language == "en"
    assert [s.text for s in transcript.segments] == [
        "as well as a beginning, signifying renewal.",
        "For I have sworn before you.",
    ]
    assert [w.text for w in transcript.words] == (
        ["as", "well", "as", "a", "beginning,", "signifying", "renewal.", "For", "I", "have", "sworn", "before", "you."]
    )
    first, second = transcript.words[:7], transcript.words[7:]
    assert (first[0].start, first[-1].end) == (0.0, pytest.approx(7.2))
    assert (second[0].start, second[-1].end) == (7.2, pytest.approx(10.0))
    assert all(w.end - w.start == pytest.approx(7.2 / 7) for w in first)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(transcript.words, transcript.words[1:], strict=False))


def test_given_words_are_kept_rather_than_spread(server, provider_settings, tmp_path):
    # OpenAI's verbose_json with both granularities (the fake's default answer).
    transcript = openai_api.transcribe(provider_settings, _audio(tmp_path))

    assert [w.text for w in transcript.words][:3] == ["Hello", "and", "welcome"]  # punctuation-free, as given


def test_a_plain_json_transcription_gives_text_without_timings(server, provider_settings, tmp_path):
    # Servers that ignore response_format verbose_json answer OpenAI's plain json: {"text": ...}
    # (openai/openai-python types/audio/transcription.py).
    server.queue(TRANSCRIPTIONS, fakes.Response(json={"text": "Hello there."}))

    transcript = openai_api.transcribe(provider_settings, _audio(tmp_path))

    assert (transcript.text, transcript.words, transcript.segments) == ("Hello there.", [], [])
    assert transcript.duration is None and transcript.language is None


# Speech

SPEECH = "/v1/audio/speech"


def _probe(path) -> dict:
    argv = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=format_name,duration", "-of", "json"]
    return json.loads(subprocess.run([*argv, str(path)], capture_output=True, text=True, check=True).stdout)


def test_kokoro_voice_passes_through_and_mp3_answered_for_wav_is_converted(server, provider_settings, tmp_path):
    # remsky/Kokoro-FastAPI README: voices such as "af_bella+af_sky" (blends), model "kokoro",
    # and mp3 its default format; a server that answers mp3 bytes whatever was asked.
    server.queue(SPEECH, fakes.Response(body=fakes.encoded("mp3", 1.0, 24000), content_type="audio/mpeg"))
    out = tmp_path / "voice" / "line.wav"

    written = openai_api.speak(provider_settings, "Hello world!", "af_bella+af_sky", out, model="kokoro")

    assert written == out
    data = out.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    info = _probe(out)
    assert (info["format"]["format_name"], info["streams"][0]["codec_name"]) == ("wav", "pcm_s16le")
    assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.1)
    assert sorted(p.name for p in out.parent.iterdir()) == ["line.wav"]
    body = server.requests[0].json
    assert (body["voice"], body["model"], body["response_format"]) == ("af_bella+af_sky", "kokoro", "wav")


def test_a_wav_answer_is_written_as_is(server, provider_settings, tmp_path):
    wav = fakes.sine_wav(0.5, 22050)
    server.queue(SPEECH, fakes.Response(body=wav, content_type="audio/wav"))

    out = openai_api.speak(provider_settings, "Hi.", "af_heart", tmp_path / "x.wav")

    assert out.read_bytes() == wav


def test_an_mp3_asked_for_is_not_converted(server, provider_settings, tmp_path):
    mp3 = fakes.encoded("mp3", 0.5, 24000)
    server.queue(SPEECH, fakes.Response(body=mp3, content_type="audio/mpeg"))

    out = openai_api.speak(provider_settings, "Hi.", "nova", tmp_path / "x.mp3", response_format="mp3")

    assert out.read_bytes() == mp3


def test_bytes_that_are_no_audio_for_a_wav_are_permanent(server, provider_settings, tmp_path):
    server.queue(SPEECH, fakes.Response(body=b"<html>busy</html>", content_type="text/html"))

    with pytest.raises(errors.PermanentError):
        openai_api.speak(provider_settings, "Hi.", "nova", tmp_path / "x.wav")

    assert not (tmp_path / "x.wav").exists()


# Images

IMAGES = "/v1/images/generations"


def _png_b64(size=(64, 48)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize(
    "body",
    [
        # mudler/LocalAI core/schema/openai.go (OpenAIResponse, Item): created, id, and data items
        # with embedding (null for images), index and b64_json; usage zero.
        {
            "created": 1741600000,
            "id": "2c3c1e2a-7a43-4a3e-9bd4-5c1d5a0e7f11",
            "data": [{"embedding": None, "index": 0, "b64_json": "{b64}"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        },
        # ollama/ollama openai/openai.go (ImageGenerationResponse): created and b64_json only.
        {"created": 1741600000, "data": [{"b64_json": "{b64}"}]},
    ],
    ids=["localai", "ollama"],
)
def test_offline_image_answers(server, provider_settings, body):
    text = json.dumps(body).replace("{b64}", _png_b64())
    server.queue(IMAGES, fakes.Response(body=text.encode(), content_type="application/json"))

    image = openai_api.generate_image(provider_settings, "an otter", size="256x256", model="stablediffusion")

    with Image.open(io.BytesIO(image.png_bytes)) as picture:
        assert (picture.format, picture.size) == ("PNG", (64, 48))
    assert image.revised_prompt is None
    assert server.requests[0].json["response_format"] == "b64_json"


def test_an_image_answer_with_only_a_url_is_permanent(server, provider_settings):
    # LocalAI's default answer when response_format is not honoured: a url under /generated-images/.
    body = {
        "created": int(time.time()),
        "id": "x",
        "data": [{"embedding": None, "index": 0, "url": "http://127.0.0.1:8080/generated-images/b6.png"}],
    }
    server.queue(IMAGES, fakes.Response(json=body))

    with pytest.raises(errors.PermanentError, match="b64_json"):
        openai_api.generate_image(provider_settings, "an otter", size="256x256", model="stablediffusion")
