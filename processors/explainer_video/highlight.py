"""Syntax colours for code blocks: pygments' lexer for the block's language and a pygments style
as the token -> colour map. A language pygments does not know is shown in one colour.
"""

import functools

import pygments.lexers
import pygments.styles
import pygments.util
from pygments import token

from processors.explainer_video import themes

Run = tuple[str, themes.RGB]  # a piece of a line and its colour


@functools.cache
def _lexer(language: str):
    try:
        return pygments.lexers.get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
    except pygments.util.ClassNotFound:
        return pygments.lexers.TextLexer(stripnl=False, ensurenl=False)


def background(style_name: str) -> themes.RGB:
    """Return the background colour of a pygments style."""
    return themes.hex_rgb(pygments.styles.get_style_by_name(style_name).background_color)


def lines(code: str, language: str, style_name: str) -> list[list[Run]]:
    """Return the code's lines, each as runs of text with their colour."""
    style = pygments.styles.get_style_by_name(style_name)
    plain = _plain_colour(style)
    result: list[list[Run]] = [[]]
    for kind, value in _lexer(language).get_tokens(code):
        colour = _colour(style, kind) or plain
        for number, part in enumerate(value.split("\n")):
            if number:
                result.append([])
            if part:
                result[-1].append((part, colour))
    return result


def _plain_colour(style) -> themes.RGB:
    named = style.style_for_token(token.Text)["color"]
    if named:
        return themes.hex_rgb(named)
    return (255, 255, 255) if themes.is_dark(themes.hex_rgb(style.background_color)) else (0, 0, 0)


def _colour(style, kind) -> themes.RGB | None:
    named = style.style_for_token(kind)["color"]
    return themes.hex_rgb(named) if named else None
