"""Prompts: one module per task type (`prompts.story`, `prompts.quiz`, ...), each holding that
type's templates as `Prompt` values. A template names the inputs it uses, and rendering it
with a missing or an unexpected input is an error, so a prompt and its caller cannot drift
apart silently.
"""

import dataclasses
import string


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A system and a user message template (`string.Template`, `$name` placeholders)."""

    system: str
    user: str
    inputs: tuple[str, ...]

    def __post_init__(self) -> None:
        used = _placeholders(self.system) | _placeholders(self.user)
        if used != set(self.inputs):
            raise ValueError(f"prompt placeholders {sorted(used)} differ from its inputs {sorted(self.inputs)}")

    def messages(self, **values: object) -> list[dict]:
        """Return the chat messages with `values` filled in; ValueError on missing or extra inputs."""
        given = set(values)
        if given != set(self.inputs):
            missing, extra = set(self.inputs) - given, given - set(self.inputs)
            raise ValueError(f"prompt inputs: missing {sorted(missing)}, unexpected {sorted(extra)}")
        text = {name: str(value) for name, value in values.items()}
        return [
            {"role": "system", "content": string.Template(self.system).substitute(text)},
            {"role": "user", "content": string.Template(self.user).substitute(text)},
        ]


def _placeholders(template: str) -> set[str]:
    return {
        match.group("named") or match.group("braced")
        for match in string.Template.pattern.finditer(template)
        if match.group("named") or match.group("braced")
    }
