"""Slide themes: named colour sets (background, text, accent) and the pygments style that colours
their code blocks, with the params' own colours laid over them; and the colour arithmetic the
slides derive their lines and fills from.
"""

import dataclasses

RGB = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Theme:
    """The colours of a slide; `code_style` names a pygments style (it brings its own background)."""

    background: RGB
    foreground: RGB
    accent: RGB
    code_style: str

    @property
    def muted(self) -> RGB:
        """Return the colour of rules and table grid lines."""
        return blend(self.foreground, self.background, 0.3)

    @property
    def header_fill(self) -> RGB:
        """Return the fill of a table's header row."""
        return blend(self.accent, self.background, 0.22)

    @property
    def stripe_fill(self) -> RGB:
        """Return the fill of every other table row."""
        return blend(self.foreground, self.background, 0.05)


def hex_rgb(value: str) -> RGB:
    """Return `#RRGGBB` as an (r, g, b) tuple."""
    digits = value.lstrip("#")
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


THEMES = {
    "light": Theme(hex_rgb("#FFFFFF"), hex_rgb("#1F2937"), hex_rgb("#2563EB"), "default"),
    "dark": Theme(hex_rgb("#0F172A"), hex_rgb("#F1F5F9"), hex_rgb("#F59E0B"), "monokai"),
    "ocean": Theme(hex_rgb("#0B3954"), hex_rgb("#E0F7FA"), hex_rgb("#5EEAD4"), "nord"),
}
DEFAULT = "light"


def resolve(
    name: str, background: str | None = None, foreground: str | None = None, accent: str | None = None
) -> Theme:
    """Return the named theme with any of its colours replaced by the given `#RRGGBB` values."""
    theme = THEMES[name]
    changes = {"background": background, "foreground": foreground, "accent": accent}
    return dataclasses.replace(theme, **{key: hex_rgb(value) for key, value in changes.items() if value})


def blend(colour: RGB, over: RGB, amount: float) -> RGB:
    """Return `colour` laid over `over` at opacity `amount` (0-1)."""
    return tuple(round(c * amount + o * (1 - amount)) for c, o in zip(colour, over, strict=True))


def is_dark(colour: RGB) -> bool:
    """Tell whether a colour is dark (relative luminance under one half)."""
    red, green, blue = colour
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue < 128
