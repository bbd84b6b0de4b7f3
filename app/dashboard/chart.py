"""The overview's charts, small SVGs drawn on the server (no chart library, nothing to load):
tasks succeeded and failed per slice of the last hour or day (`bars`), and a pool's queue
wait p50 and p95 per slice (`lines`)."""

WIDTH = 600
HEIGHT = 160
LEFT = 40
BOTTOM = 24
TOP = 8
GAP = 4


def bars(buckets: list[dict]) -> dict:
    """Return the chart's geometry: a bar per bucket (succeeded below, failed stacked on top),
    the y-axis maximum and tick labels."""
    peak = max([b["succeeded"] + b["failed"] for b in buckets] + [1])
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(buckets))
    drawn = []
    for index, bucket in enumerate(buckets):
        ok = plot_height * bucket["succeeded"] / peak
        failed = plot_height * bucket["failed"] / peak
        base = HEIGHT - BOTTOM
        drawn.append(
            {
                "x": round(LEFT + index * slot + GAP / 2, 1),
                "width": round(slot - GAP, 1),
                "ok_y": round(base - ok, 1),
                "ok_height": round(ok, 1),
                "failed_y": round(base - ok - failed, 1),
                "failed_height": round(failed, 1),
                "succeeded": bucket["succeeded"],
                "failed": bucket["failed"],
                "start": bucket["start"],
            }
        )
    return {
        "bars": drawn,
        "peak": peak,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "top": TOP,
        "base": HEIGHT - BOTTOM,
        "total_succeeded": sum(b["succeeded"] for b in buckets),
        "total_failed": sum(b["failed"] for b in buckets),
    }


def lines(slices: list[dict], keys: tuple[str, ...] = ("p50", "p95")) -> dict:
    """Return a line chart's geometry: for each key (`p50`, `p95`) the points of the slices
    that have a value (seconds), the y-axis maximum, and the slices themselves."""
    values = [s[k] for s in slices for k in keys if s[k] is not None]
    peak = max([*values, 0.001])
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(slices))
    drawn = {}
    for key in keys:
        points = [
            f"{LEFT + (index + 0.5) * slot:.1f},{HEIGHT - BOTTOM - plot_height * item[key] / peak:.1f}"
            for index, item in enumerate(slices)
            if item[key] is not None
        ]
        drawn[key] = " ".join(points)
    geometry = {"width": WIDTH, "height": HEIGHT, "left": LEFT, "top": TOP, "base": HEIGHT - BOTTOM}
    return {"lines": drawn, "peak": peak, "slices": slices, **geometry}
