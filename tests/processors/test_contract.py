"""The processor contract: the kit in `processors.testing` over every built-in type, proof that
the kit catches broken processors, and the registry's refusals at load time.
"""

import subprocess
import sys
import time

import marshmallow
import pytest

import processors
from app import config
from processors import base, errors, registry, testing
from processors.policy import Policy
from processors.sleep import SleepProcessor
from tests import media
from tests.fakes import openai_server

# Every built-in type's params for the kit: valid, invalid, and for a run that takes a while
# (None for types whose run is instant).
SOURCE_ID = "00000000-0000-4000-8000-000000000001"
COURSE_OUTLINE = {"title": "T", "chapters": [{"title": "C", "lessons": [{"title": "L", "content": "A."}]}]}
CASES = {
    "noop": {"valid": {"echo": {"a": [1, 2]}}, "invalid": {"unknown": 1}, "cancel": None},
    "sleep": {"valid": {"seconds": 0.05}, "invalid": {"seconds": -1}, "cancel": {"seconds": 30}},
    "flaky": {"valid": {"times": 0}, "invalid": {"error": "sometimes"}, "cancel": None},
    "voice": {
        "valid": {"text": "One short sentence. And another one.", "format": "wav"},
        "invalid": {"text": "hi", "format": "flac"},
        "cancel": {"text": "A sentence that takes a while to say out loud. " * 40},
    },
    "image": {
        "valid": {"prompt": "a red bicycle", "n": 2},
        "invalid": {"prompt": "a red bicycle", "size": "10x10"},
        "cancel": {"prompt": "a red bicycle", "n": 4},
    },
    "explainer_video": {
        "valid": {"script": [{"narration": "One short scene.", "slide": "# One\n\n- a point"}], "aspect": "1:1"},
        "invalid": {"prompt": "otters", "script": [{"narration": "Hi.", "slide": "# Hi"}]},
        "cancel": {"script": [{"narration": "A scene that takes a while to say. " * 20, "slide": "# Long"}] * 2},
    },
    "story": {
        "valid": {"prompt": "a fox who learns to share", "illustrations": 1, "narration": True, "quiz": True},
        "invalid": {"prompt": "a fox who learns to share", "length": "epic"},
        "cancel": {"prompt": "a fox who learns to share"},
    },
    "quiz": {
        "valid": {"source_text": "Otters hold hands while they sleep.", "num_questions": 2},
        "invalid": {"source_text": "Otters sleep.", "source_task_id": SOURCE_ID},
        "cancel": {"source_text": "Otters hold hands while they sleep.", "num_questions": 2},
    },
    "video_clip": {
        "valid": {"source": {"upload_id": SOURCE_ID}, "max_clips": 1, "min_s": 2, "max_s": 3, "aspect": "1:1"},
        "invalid": {"source": {"upload_id": SOURCE_ID}, "min_s": 30, "max_s": 10},
        "cancel": {"source": {"upload_id": SOURCE_ID}, "min_s": 2, "max_s": 3},
    },
    # A course waits for its children, which an in-memory context never runs: only its cancel
    # is run here; tests/processors/test_course_video.py runs it on real workers.
    "course_video": {
        "valid": {"outline": COURSE_OUTLINE},
        "invalid": {"topic": "otters", "max_chapters": 0},
        "cancel": {"outline": COURSE_OUTLINE},
        "run": False,
    },
    "animated_lesson": {
        "valid": {
            "sections": [
                {"title": "One", "narration": "One short section.", "blocks": [{"type": "text", "content": "Hi"}]}
            ],
            "aspect": "1:1",
            "resolution": 360,
        },
        "invalid": {"prompt": "otters", "sections": [{"title": "A", "narration": "Hi.", "blocks": []}]},
        "cancel": {
            "sections": [
                {
                    "title": "Long",
                    "narration": "A section that takes a while to say. " * 20,
                    "blocks": [{"type": "heading", "content": "Long"}],
                }
            ]
            * 2
        },
    },
    "documentation": {
        "valid": {"content": "Otters hold hands while they sleep. They float on their backs.", "format": "pdf"},
        "invalid": {"content": "Otters sleep.", "format": "docx"},
        "cancel": {"content": "Otters hold hands while they sleep. " * 40},
    },
}


@pytest.fixture(scope="module")
def contract_world(tmp_path_factory):
    """What the media types need to run: settings with a fake OpenAI server, and an upload."""
    folder = tmp_path_factory.mktemp("contract")
    cues = [(0.2, 1.8, "First caption"), (2.0, 3.8, "Second caption"), (4.0, 5.8, "Third caption")]
    source = media.make_video(folder / "source.mp4", 6, size=(320, 240), speech_text="Hello there.", subtitles=cues)
    with openai_server.OpenAIServer() as server:
        settings = config.load({"CONVEYOR_VAR_DIR": str(folder / "var")}, server.settings())
        yield {"settings": settings, "uploads": {SOURCE_ID: source}}


def builtin_classes() -> list[type]:
    """Return the built-in processor classes, imported as the registry imports them."""
    return [registry.import_path(path) for path in processors.BUILTIN]


def test_every_builtin_type_has_a_case():
    types = {cls.type for cls in builtin_classes()}
    assert types - set(CASES) == set(), "add these built-in types to CASES so the kit checks them"
    assert set(CASES) - types == set(), "these CASES are for types that are not built in"


@pytest.mark.parametrize("path", processors.BUILTIN)
def test_builtin_keeps_the_contract(path, contract_world):
    cls = registry.import_path(path)
    case = CASES.get(cls.type)
    assert case is not None, f"built-in type {cls.type!r} has no entry in CASES"
    if case.get("run", True):
        testing.check(cls, case["valid"], case["invalid"], cancel_params=case["cancel"], **contract_world)
    else:
        testing.check(cls, case["valid"], case["invalid"], run=False)
        testing.check_cancel(cls, case["cancel"], **contract_world)


def test_check_run_returns_the_result_or_the_classed_error():
    assert testing.check_run(SleepProcessor, {"seconds": 0}) == {"slept": 0.0}
    flaky = registry.import_path("processors.flaky:FlakyProcessor")
    assert isinstance(testing.check_run(flaky, {"times": 1, "error": "permanent"}), errors.PermanentError)


# --- processors broken on purpose --------------------------------------------------------------


class Working(base.Processor):
    """A correct processor the broken ones below each spoil in one way."""

    type = "working"
    policy = Policy(max_attempts=1, soft_timeout=5, hard_timeout=10, estimate=0.1)

    def run(self, params, ctx):
        ctx.progress(100, "done")
        return {"ok": True}


class Instant(Working):
    def run(self, params, ctx):
        return {}


class IgnoresCancel(Working):
    def run(self, params, ctx):
        for _ in range(20):
            time.sleep(0.05)
        return {}


class SwallowsCancel(Working):
    def run(self, params, ctx):
        for step in range(3):
            try:
                ctx.progress(step * 50)
            except errors.Cancelled:
                pass
        return {}


class CancelsItself(Working):
    def run(self, params, ctx):
        raise errors.Cancelled()


class RaisesBare(Working):
    def run(self, params, ctx):
        raise RuntimeError("boom")


class ReturnsList(Working):
    def run(self, params, ctx):
        return ["not", "a", "dict"]


class ReturnsNaN(Working):
    def run(self, params, ctx):
        return {"score": float("nan")}


class ReturnsObject(Working):
    def run(self, params, ctx):
        return {"when": object()}


class LeavesChildTracked(Working):
    def run(self, params, ctx):
        process = ctx.track(subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True))
        process.wait()
        return {}


class BadPolicy(Working):
    policy = Policy(soft_timeout=100, hard_timeout=50)


class EndlessPolicy(Working):
    policy = Policy(soft_timeout=float("inf"), hard_timeout=float("inf"))


class SlowEstimate(Working):
    policy = Policy(soft_timeout=60, hard_timeout=90, estimate=600)


class UnknownProvider(Working):
    providers = ("telepathy",)


class NoRegistryInit(Working):
    def __init__(self):
        super().__init__()


class NotASchema(Working):
    Params = dict


class LosesParamsInStorage(Working):
    class Params(marshmallow.Schema):
        secret = marshmallow.fields.String(required=True, load_only=True)


class CrashesOnLoad(Working):
    class Params(marshmallow.Schema):
        count = marshmallow.fields.Integer(load_default=1)

        @marshmallow.post_load
        def explode(self, data, **kwargs):
            raise ValueError("not a marshmallow error")


class NamesStrayField(Working):
    class Params(marshmallow.Schema):
        count = marshmallow.fields.Integer(load_default=1)

        @marshmallow.validates_schema
        def positive(self, data, **kwargs):
            if data["count"] < 0:
                raise marshmallow.ValidationError("must be positive", field_name="elsewhere")


class StoresASet(Working):
    class Params(marshmallow.Schema):
        tags = marshmallow.fields.Raw(load_default=None)

        @marshmallow.post_load
        def as_set(self, data, **kwargs):
            return {"tags": set(data["tags"] or ())}


@pytest.mark.parametrize(
    "cls, rule",
    [
        (RaisesBare, "classes its errors"),
        (ReturnsList, "classes its errors"),
        (ReturnsNaN, "classes its errors"),
        (ReturnsObject, "classes its errors"),
        (CancelsItself, "classes its errors"),
        (LeavesChildTracked, "child processes"),
    ],
)
def test_kit_catches_a_bad_run(cls, rule):
    with pytest.raises(AssertionError, match=f"{cls.__qualname__}.*'{rule}'"):
        testing.check(cls, {})


@pytest.mark.parametrize("cls", [IgnoresCancel, SwallowsCancel])
def test_kit_catches_ignored_cancel(cls):
    with pytest.raises(AssertionError, match=f"{cls.__qualname__}.*'honours cancel'"):
        testing.check_cancel(cls, {}, within=0.3)


def test_kit_catches_an_instant_run_given_cancel_params():
    with pytest.raises(AssertionError, match="before it could be cancelled"):
        testing.check_cancel(Instant, {})


@pytest.mark.parametrize(
    "cls, message",
    [
        (BadPolicy, "soft_timeout must be positive and at most hard_timeout"),
        (EndlessPolicy, "finite"),
        (SlowEstimate, "exceeds soft_timeout"),
        (UnknownProvider, "unknown provider"),
        (NoRegistryInit, "cls\\(policy=...\\)"),
        (NotASchema, "Params must be a marshmallow Schema"),
    ],
)
def test_kit_catches_a_bad_declaration(cls, message):
    with pytest.raises(AssertionError, match=message):
        testing.check(cls, {}, run=False)


@pytest.mark.parametrize(
    "cls, params, message",
    [
        (LosesParamsInStorage, {"secret": "x"}, "stored form .* were refused"),
        (CrashesOnLoad, {}, "only InvalidParams may escape"),
        (StoresASet, {"tags": ["a"]}, "not JSON"),
    ],
)
def test_kit_catches_a_bad_schema(cls, params, message):
    with pytest.raises(AssertionError, match=message):
        testing.check_schema(cls, params)


def test_kit_catches_invalid_params_that_are_accepted():
    with pytest.raises(AssertionError, match="were accepted"):
        testing.check_schema(SleepProcessor, {}, {"seconds": 5})


def test_kit_catches_a_refusal_naming_a_stray_field():
    with pytest.raises(AssertionError, match="names \\['elsewhere'\\]"):
        testing.check_schema(NamesStrayField, {"count": 1}, {"count": -1})


def test_kit_accepts_a_refusal_of_params_that_are_not_an_object():
    testing.check_schema(SleepProcessor, {}, ["seconds", 1])


# --- the registry ------------------------------------------------------------------------------


class SecondSleep(SleepProcessor):
    """Claims the built-in `sleep` type a second time."""


class BadType(Working):
    type = "Bad-Type"


class NotAProcessor:
    type = "not_a_processor"

    def run(self, params, ctx):
        return {}


HERE = __name__


def load(extra=(), overrides=None) -> registry.Registry:
    """Build a registry of the built-ins plus `extra` paths, ignoring installed plugins."""
    return registry.load(processors.BUILTIN, list(extra), overrides, plugins=False)


def test_registry_refuses_a_duplicate_type_naming_both_origins():
    with pytest.raises(errors.RegistryError, match="duplicate task type 'sleep'") as caught:
        load([f"{HERE}:SecondSleep"])
    assert "processors.sleep:SleepProcessor" in str(caught.value)
    assert f"{HERE}:SecondSleep" in str(caught.value)


@pytest.mark.parametrize(
    "name, problem",
    [
        ("NotAProcessor", "not a subclass of processors.base.Processor"),
        ("BadType", "type 'Bad-Type' must match"),
        ("BadPolicy", "policy: soft_timeout must be"),
    ],
)
def test_registry_refuses_a_malformed_class_naming_it(name, problem):
    with pytest.raises(errors.RegistryError, match=f"{HERE}:{name} is malformed: .*{problem}"):
        load([f"{HERE}:{name}"])


@pytest.mark.parametrize("path", ["no_colon", "no.such.module:Thing", "processors.sleep:Missing"])
def test_registry_refuses_a_path_it_cannot_import(path):
    with pytest.raises(errors.RegistryError, match=path):
        load([path])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nope": {"max_attempts": 2}}, "unknown task type 'nope'"),
        ({"sleep": {"retries": 2}}, "unknown policy field"),
        ({"sleep": {"max_attempts": "many"}}, "is not a number"),
        ({"sleep": {"max_attempts": 2.5}}, "is not a whole number"),
        ({"sleep": {"hard_timeout": "inf"}}, "is not finite"),
        ({"sleep": {"max_attempts": 0}}, "max_attempts must be"),
        ({"sleep": {"pool": "gpu"}}, "pool must be one of"),
        ({"sleep": {"soft_timeout": 5000}}, "soft_timeout must be"),
        ({"sleep": 5}, "must be an object"),
    ],
)
def test_registry_refuses_a_bad_policy_override(overrides, message):
    with pytest.raises(errors.RegistryError, match=message):
        load(overrides=overrides)


def test_a_policy_override_changes_the_effective_policy():
    loaded = load(overrides={"sleep": {"max_attempts": 5, "pool": "io"}})
    assert loaded.policy("sleep") == Policy(**{**vars(SleepProcessor.policy), "max_attempts": 5, "pool": "io"})
    assert loaded.create("sleep").policy.max_attempts == 5
    assert SleepProcessor.policy.max_attempts == 3
    assert loaded.policy("noop") == registry.import_path("processors.noop:NoopProcessor").policy


def test_conveyor_policies_setting_reaches_the_registry():
    settings = config.load({"CONVEYOR_POLICIES": '{"sleep": {"max_attempts": 5}}'})
    loaded = load(overrides=settings["CONVEYOR_POLICIES"])
    assert loaded.policy("sleep").max_attempts == 5


def test_a_float_field_takes_a_fraction_whatever_its_default_looks_like():
    # sleep's hard_timeout default is written 3720 (an int); the field is still a float.
    loaded = load(overrides={"sleep": {"hard_timeout": 1.5, "soft_timeout": 1.25}})
    assert (loaded.policy("sleep").hard_timeout, loaded.policy("sleep").soft_timeout) == (1.5, 1.25)
    with pytest.raises(errors.RegistryError, match="not a whole number"):
        load(overrides={"sleep": {"max_attempts": 2.5}})
