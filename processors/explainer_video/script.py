"""The script of an explainer: scenes of narration and slide markdown, either given in the
params or written by the LLM from a prompt (`processors.llm`: a structured answer, checked for
the exact scene count and for slides that start with a heading and fit a frame; one re-ask,
then the task fails). A given script gets the same fit check before any work starts.
"""

import dataclasses

import pydantic

from processors import errors, llm
from processors.explainer_video import markup, slides
from processors.prompts import explainer_video as prompts

MAX_NARRATION = 2_000


@dataclasses.dataclass(frozen=True)
class Script:
    """What the video says and shows; `by` is "llm" or "given"; `usage` the LLM's tokens."""

    title: str
    scenes: list[dict]  # each {"narration": str, "slide": str}
    by: str
    usage: dict | None = None

    def to_dict(self) -> dict:
        """Return the script as stored in script.json."""
        return {"title": self.title, "by": self.by, "scenes": [dict(scene) for scene in self.scenes]}


class Scene(pydantic.BaseModel):
    narration: str
    slide: str


class Answer(pydantic.BaseModel):
    title: str
    scenes: list[Scene]


def given(params: dict) -> Script:
    """Return the params' own script; PermanentError naming each slide that cannot be drawn."""
    scenes = [{"narration": s["narration"].strip(), "slide": s["slide"].strip()} for s in params["script"]]
    found = [
        f"scene {n}: {why}"
        for n, s in enumerate(scenes, 1)
        if (why := slides.problem(s["slide"], params["aspect"], params["subtitles"]))
    ]
    if found:
        raise errors.PermanentError(f"the script cannot be shown: {'; '.join(found)}")
    return Script(params.get("title") or _first_heading(scenes) or "Explainer", scenes, "given")


def written(params: dict, ctx) -> Script:
    """Ask the LLM for a script of `params["scenes"]` scenes on `params["prompt"]`."""
    messages = prompts.SCRIPT.messages(
        scenes=params["scenes"],
        aspect=params["aspect"],
        language=f'the language with code "{params["language"]}"' if params["language"] else "the topic's language",
        topic=params["prompt"],
    )
    answer = llm.ask(ctx, "explainer_video", messages, Answer, lambda value: problems(value, params))
    scenes = [{"narration": s.narration.strip(), "slide": s.slide.strip()} for s in answer.value.scenes]
    title = params.get("title") or answer.value.title.strip() or _first_heading(scenes) or "Explainer"
    return Script(title, scenes, "llm", {**answer.usage, "model": answer.model, "asks": answer.asks})


def problems(answer: Answer, params: dict) -> list[str]:
    """Return what is wrong with the LLM's script, empty when it can be used as it is."""
    found = []
    if len(answer.scenes) != params["scenes"]:
        found.append(f"there must be exactly {params['scenes']} scenes, not {len(answer.scenes)}")
    for number, scene in enumerate(answer.scenes, 1):
        found += [f"scene {number}: {why}" for why in _scene_problems(scene, params)]
    return found


def _scene_problems(scene: Scene, params: dict) -> list[str]:
    found = []
    if not scene.narration.strip():
        found.append("the narration is empty")
    elif len(scene.narration) > MAX_NARRATION:
        found.append(f"the narration is longer than {MAX_NARRATION} characters")
    if not scene.slide.strip():
        found.append("the slide is empty")
    elif not markup.starts_with_heading(scene.slide):
        found.append("the slide must start with a `#` heading")
    elif why := slides.problem(scene.slide, params["aspect"], params["subtitles"]):
        found.append(why)
    return found


def _first_heading(scenes: list[dict]) -> str | None:
    for block in markup.parse(scenes[0]["slide"]) if scenes else []:
        if isinstance(block, markup.Heading):
            return block.text
    return None
