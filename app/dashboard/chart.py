"""The overview's throughput chart: a small SVG of tasks succeeded and failed per slice of
the last hour, drawn on the server (no chart library, nothing to load)."""

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
