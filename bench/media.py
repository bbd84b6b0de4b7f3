"""The video_clip render step against one hand-written ffmpeg command doing the same work.

Issue 4's target: rendering a clip with `processors.video_clip.render.render` (what a
`video_clip` task runs for each clip: the argument builder, `-progress` parsing in reader
threads, cancel polling, the ASS file) takes at most 1.1x the time of one hand-written ffmpeg
command with the same cut, crop, scale, captions and encoder settings on the same input.

At start it makes a 60 s 1280x720 source with ffmpeg and espeak-ng (test pattern, speech, an
embedded subtitle track) in a temporary directory. It renders one clip (20 s to 45 s by default)
to 9:16 (1080x1920) with burned-in ASS captions both ways: one short untimed warm-up each, then
--rounds timed rounds, alternating which goes first. The hand-written command uses the ASS file
the processor wrote, so libass draws the same captions. It reports the median wall time of
each, their ratio against the target, the CPU seconds used (children and this process, which
move less than wall time on a shared machine) and the load average, and checks that both
outputs match (size, codecs, frame count, duration).

    .venv/bin/python bench/media.py              # 5 rounds of a 25 s clip, about 2-3 minutes on 2 cores
    .venv/bin/python bench/media.py --quick      # 1 round of a 10 s clip
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `processors` and `tests.media`, imported where used

SOURCE_SECONDS = 60.0
SOURCE_SIZE = (1280, 720)
CLIP_START = 20.0
TARGET = 1.1
# Six-second captions over the whole source, as a talk's subtitles would be.
SENTENCES = [
    "Welcome to the media benchmark.",
    "We render one clip two ways.",
    "First with the processor's render step.",
    "Then with a hand-written ffmpeg command.",
    "Both cut, crop, scale and caption the same frames.",
    "The target is at most one point one times.",
    "Captions are burned in with libass.",
    "The output is nine by sixteen.",
    "Medians make noise matter less.",
    "Thank you for waiting.",
]


def machine() -> list[str]:
    """Describe the machine: cores, CPU, ffmpeg and Python versions, load."""
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return [
        f"nproc: {os.cpu_count()}",
        f"CPU: {model}",
        f"ffmpeg: {ffmpeg_version}",
        f"Python: {platform.python_version()}",
        load_average(),
    ]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return "load average: " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def make_source(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Make the source video and its subtitles (also embedded in it); return both paths."""
    from tests import media

    step = SOURCE_SECONDS / len(SENTENCES)
    cues = [(i * step + 0.2, (i + 1) * step - 0.2, text) for i, text in enumerate(SENTENCES)]
    source = media.make_video(
        folder / "source.mp4", SOURCE_SECONDS, size=SOURCE_SIZE, speech_text=" ".join(SENTENCES), subtitles=cues
    )
    return source, source.with_suffix(".srt")


class Processor:
    """The processor's render step, as `video_clip` calls it for each clip."""

    def __init__(self, source: pathlib.Path, srt: pathlib.Path, workdir: pathlib.Path):
        from processors import base, captions, fonts
        from processors.providers import ffmpeg
        from processors.video_clip import render

        self.render = render
        self.source = source
        self.probe = ffmpeg.probe(source)
        self.cues = captions.read(srt)
        self.look = render.Look("9:16", True, fonts.get(fonts.DEFAULT), 24, "#FFFFFF")
        self.ctx = base.Context("bench-media", 1, workdir)

    def run(self, start: float, length: float, out: pathlib.Path) -> None:
        self.render.render(self.source, self.probe, start, start + length, self.cues, self.look, out, self.ctx)

    @staticmethod
    def captions_file(out: pathlib.Path) -> pathlib.Path:
        """Return the ASS file the render of `out` wrote."""
        return out.with_suffix(".ass")


def hand_written(source: pathlib.Path, ass: pathlib.Path, fonts_dir: pathlib.Path, start: float, length: float, out):
    """Run the command one would write by hand for the same clip."""
    # 1280x720 to 9:16: the centre 404x720 (405 rounded down to even), scaled to 1080x1920.
    video_filter = f"crop=404:720,scale=1080:1920,setsar=1,subtitles=filename={ass}:fontsdir={fonts_dir}"
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "warning"]
    argv += ["-ss", f"{start:g}", "-t", f"{length:g}", "-i", str(source)]
    argv += ["-map", "0:v:0", "-map", "0:a:0", "-vf", video_filter, "-t", f"{length:g}"]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
    argv += ["-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2", "-movflags", "+faststart", str(out)]
    # In a session of its own, as the processor starts ffmpeg: with the kernel's autogroup
    # scheduling each session is one scheduling group, and on a loaded machine a different
    # group would get a different share of the CPU, which is not what is being compared.
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, start_new_session=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({done.returncode}): {done.stderr[-2000:]}")


def timed(action) -> tuple[float, float]:
    """Run `action`; return its wall seconds and the CPU seconds of this process and its children."""
    before = _cpu()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started, _cpu() - before


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def describe(path: pathlib.Path) -> dict:
    """Return what must match between the two outputs."""
    argv = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    info = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    return {
        "size": f"{video['width']}x{video['height']}",
        "codecs": f"{video['codec_name']}/{audio['codec_name']} {video['pix_fmt']}",
        "frames": int(video.get("nb_frames") or 0),
        "duration": round(float(info["format"]["duration"]), 2),
    }


def rounds(processor: Processor, hand, count: int, start: float, length: float, tmp: pathlib.Path) -> dict:
    """Time `count` rounds of each, alternating which goes first; return the samples."""
    samples: dict[str, list[tuple[float, float]]] = {"processor": [], "hand-written": []}
    runs = {
        "processor": lambda: processor.run(start, length, tmp / "processor.mp4"),
        "hand-written": lambda: hand(start, length, tmp / "hand.mp4"),
    }
    for number in range(1, count + 1):
        order = ["processor", "hand-written"] if number % 2 else ["hand-written", "processor"]
        for name in order:
            samples[name].append(timed(runs[name]))
        figures = ", ".join(f"{name} {samples[name][-1][0]:.2f} s" for name in order)
        print(f"round {number}: {figures}   ({load_average()})", flush=True)
    return samples


def report(samples: dict, outputs: dict) -> bool:
    """Print medians, the ratio and the target; return whether it passed."""
    medians = {name: statistics.median(wall for wall, _ in runs) for name, runs in samples.items()}
    fastest = {name: min(wall for wall, _ in runs) for name, runs in samples.items()}
    cpu = {name: statistics.median(used for _, used in runs) for name, runs in samples.items()}
    print(f"\n{'figure':<20}{'processor':>18}{'hand-written':>18}")
    print(f"{'median wall (s)':<20}{medians['processor']:>18.2f}{medians['hand-written']:>18.2f}")
    print(f"{'fastest wall (s)':<20}{fastest['processor']:>18.2f}{fastest['hand-written']:>18.2f}")
    print(f"{'median CPU (s)':<20}{cpu['processor']:>18.2f}{cpu['hand-written']:>18.2f}")
    for key in ("size", "codecs", "frames", "duration"):
        print(f"{'output ' + key:<20}{outputs['processor'][key]!s:>18}{outputs['hand-written'][key]!s:>18}")
    ratio = medians["processor"] / medians["hand-written"]
    passed = ratio <= TARGET
    verdict = "PASS" if passed else "FAIL"
    print("\ntarget:")
    print(f"  processor / hand-written, median wall   {ratio:.3f}x  target <= {TARGET:g}x  {verdict}")
    print(
        f"  (for reference: fastest wall {fastest['processor'] / fastest['hand-written']:.3f}x, "
        f"median CPU {cpu['processor'] / cpu['hand-written']:.3f}x)"
    )
    return passed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds of each (default 5; --quick 1)")
    parser.add_argument("--clip", type=float, default=None, help="clip length in seconds (default 25; --quick 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of a 10 s clip")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.clip = args.clip or (10.0 if args.quick else 25.0)
    if not 1 <= args.clip <= SOURCE_SECONDS - CLIP_START:
        parser.error(f"--clip must be from 1 to {SOURCE_SECONDS - CLIP_START:g} seconds")
    return args


def main() -> None:
    args = parse_args()
    from processors import fonts

    print("machine:\n  " + "\n  ".join(machine()))
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-media-") as folder:
        tmp = pathlib.Path(folder)
        made = time.perf_counter()
        source, srt = make_source(tmp / "media")
        print(
            f"run: source {SOURCE_SECONDS:g} s {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} (made in "
            f"{time.perf_counter() - made:.1f} s); clip {CLIP_START:g}-{CLIP_START + args.clip:g} s to 1080x1920 "
            f"with captions, libx264 veryfast crf 20; {args.rounds} round(s) each, alternating",
            flush=True,
        )
        processor = Processor(source, srt, tmp / "work")
        # The ASS file each processor run writes for its clip. Round 1 runs the processor
        # first, so from then on it holds the timed clip's captions (rewritten identically).
        ass = Processor.captions_file(tmp / "processor.mp4")

        def hand(start: float, length: float, out: pathlib.Path) -> None:
            hand_written(source, ass, fonts.DIRECTORY, start, length, out)

        # Warm-up, untimed and short: the programs, fonts and source into the page cache.
        processor.run(CLIP_START, 2.0, tmp / "processor.mp4")
        hand(CLIP_START, 2.0, tmp / "hand.mp4")
        samples = rounds(processor, hand, args.rounds, CLIP_START, args.clip, tmp)
        outputs = {"processor": describe(tmp / "processor.mp4"), "hand-written": describe(tmp / "hand.mp4")}
        passed = report(samples, outputs)
        if outputs["processor"] != outputs["hand-written"]:
            print("the two outputs differ: the comparison is not like for like")
            passed = False
    print(f"\nend of run, {load_average()}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; temporary files removed")
