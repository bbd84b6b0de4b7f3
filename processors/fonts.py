"""The caption fonts Conveyor ships: open-licensed files in `processors/assets/fonts`, their
licences in `processors/assets/font-licenses`. Captions name a font by its `name`
(`font_family` in video_clip's params); libass finds the file through the fonts directory
handed to ffmpeg.
"""

import dataclasses
import pathlib

DIRECTORY = pathlib.Path(__file__).resolve().parent / "assets" / "fonts"


@dataclasses.dataclass(frozen=True)
class Font:
    """A shipped font: its name in params and URLs, its family as libass knows it, its file."""

    name: str
    family: str
    file: str
    license: str
    description: str

    @property
    def path(self) -> pathlib.Path:
        return DIRECTORY / self.file

    @property
    def mime(self) -> str:
        return "font/otf" if self.file.endswith(".otf") else "font/ttf"


FONTS = {
    font.name: font
    for font in (
        Font("open-sans", "Open Sans", "OpenSans-Bold.ttf", "Apache-2.0", "Open Sans Bold: clear humanist sans"),
        Font("lato", "Lato", "Lato-Bold.ttf", "OFL-1.1", "Lato Bold: warm, rounded sans"),
        Font("bebas-neue", "Bebas Neue", "BebasNeue-Bold.otf", "OFL-1.1", "Bebas Neue Bold: tall capitals only"),
        Font(
            "dejavu-sans",
            "DejaVu Sans",
            "DejaVuSans-Bold.ttf",
            "Bitstream-Vera",
            "DejaVu Sans Bold: wide script coverage",
        ),
    )
}
DEFAULT = "open-sans"


def get(name: str) -> Font:
    """Return the shipped font called `name`; KeyError if there is none."""
    return FONTS[name]
