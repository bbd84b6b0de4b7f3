"""Basic accessibility checks in a real browser, on every page an admin sees: every text
meets WCAG AA contrast against the background it is drawn on (4.5:1, or 3:1 for large text),
and every form control has a label."""

from app.services import accounts
from app.services import tasks as task_service
from tests.dashboard.test_browser import Watched, settings, sign_in  # noqa: F401 - settings: plain http

PAGES = [
    "/dashboard/",
    "/dashboard/tasks",
    "/dashboard/new",
    "/dashboard/new/sleep",
    "/dashboard/usage",
    "/dashboard/webhooks",
    "/dashboard/admin",
    "/dashboard/schedules",
]

# For each element with its own text: its colour, the first opaque background behind it, its
# size and weight. Colours come back as "rgb(r, g, b)" or "rgba(r, g, b, a)".
TEXT_COLOURS = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT);
  for (let el = walker.currentNode; el; el = walker.nextNode()) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const style = getComputedStyle(el);
    if (!own || style.visibility === "hidden" || style.display === "none" || !el.getClientRects().length) continue;
    let back = null;
    for (let up = el; up; up = up.parentElement) {
      const bg = getComputedStyle(up).backgroundColor;
      if (bg && !bg.startsWith("rgba(0, 0, 0, 0)") && bg !== "transparent") { back = bg; break; }
    }
    found.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40), color: style.color,
                background: back || "rgb(255, 255, 255)", size: parseFloat(style.fontSize),
                weight: parseInt(style.fontWeight, 10), opacity: parseFloat(style.opacity)});
  }
  return found;
}"""

UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
  .filter(c => c.type !== "hidden" && !c.closest("[hidden]"))
  .filter(c => !(c.labels && c.labels.length) && !c.getAttribute("aria-label") && !c.getAttribute("aria-labelledby"))
  .map(c => c.name || c.id || c.outerHTML.slice(0, 80))"""


def _rgb(css: str) -> tuple[float, ...]:
    return tuple(float(part) for part in css[css.index("(") + 1 : css.index(")")].split(",")[:3])


def _luminance(rgb: tuple[float, ...]) -> float:
    def channel(value: float) -> float:
        value /= 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(foreground: str, background: str) -> float:
    """Return the WCAG contrast ratio of two CSS rgb() colours."""
    light, dark = sorted((_luminance(_rgb(foreground)), _luminance(_rgb(background))), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula_matches_wcag():
    assert round(contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)"), 1) == 21.0
    assert round(contrast("rgb(118, 118, 118)", "rgb(255, 255, 255)"), 2) == 4.54  # the AA edge grey


def test_every_page_has_readable_text_and_labelled_controls(backend, app, server, keys, browser):
    task_service.submit("noop", {}, account_id=accounts.authenticate(keys["a_admin"]).account_id)
    watched = Watched(browser, server)
    try:
        sign_in(watched, keys["a_operator"])
        for path in PAGES:
            watched.page.goto(path)
            watched.page.wait_for_load_state("networkidle")
            low = []
            for item in watched.page.evaluate(TEXT_COLOURS):
                if item["opacity"] < 1:
                    continue  # disabled controls are exempt from the contrast rule
                large = item["size"] >= 24 or (item["size"] >= 18.66 and item["weight"] >= 700)
                ratio = contrast(item["color"], item["background"])
                if ratio < (3.0 if large else 4.5):
                    low.append((item["tag"], item["text"], item["color"], item["background"], round(ratio, 2)))
            assert low == [], (path, low)
            assert watched.page.evaluate(UNLABELLED) == [], path
        assert watched.problems == []
    finally:
        watched.close()
