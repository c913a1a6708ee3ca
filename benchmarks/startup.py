"""How long do `cxbot --help`, `cxbot journey validate FILE` and `cxbot kpi import FILE` take to
start, in this tree and in a baseline revision, measured in the same run?

Each tree runs with the same interpreter (this one) and PYTHONPATH pointing at it, so only the code
differs: this checkout, and the baseline exported with `git archive` into a temporary directory
(default: the merge-base of HEAD and main; pass --baseline REV after the change has landed). Each
command runs once untimed per tree (to compile the .pyc files and create the database: `kpi
import` needs the example journey loaded, and imports the same small CSV every time, so after the
first run it finds its answers already there), then --runs times, the two trees alternating so
that a busy machine slows both alike. Wall time is the subprocess's, CPU time is its user + system
time (getrusage of the children); the table shows medians and the load average, then one JSON line.

    .venv/bin/python benchmarks/startup.py                    # baseline: merge-base with main
    .venv/bin/python benchmarks/startup.py --baseline 11f2a7e --runs 15
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "content" / "journey.example.yaml"
ENTRY = "import sys; sys.argv[0] = 'cxbot'; from bot.cli import main; main()"
ANSWERS = "answered_at,metric,score,stage\n" + "".join(
    f"2026-11-{day:02d}T09:{minute:02d}:00,nps,{minute % 11},usage\n" for day in (23, 24) for minute in range(10)
)
COMMANDS: dict[str, Sequence[str]] = {
    "cxbot --help": ("--help",),
    "cxbot journey validate content/journey.example.yaml": ("journey", "validate", str(EXAMPLE)),
    "cxbot kpi import answers.csv": ("kpi", "import", "{work}/answers.csv"),
}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def export(revision: str, into: Path) -> None:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


class Tree:
    def __init__(self, label: str, code: Path, work: Path) -> None:
        self.label, self.code, self.work = label, code, work
        work.mkdir(parents=True, exist_ok=True)
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("CXBOT_", "DATABASE_URL", "OPENAI_", "PYTHON"))
        }
        self.env |= {"PYTHONPATH": str(code), "CXBOT_DATABASE_URL": f"sqlite:///{work / 'cxbot.db'}"}
        self.times: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}

    def run(self, args: Sequence[str]) -> tuple[float, float]:
        """Runs `cxbot ARGS` with this tree's code; returns (wall, cpu) seconds."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", ENTRY, *(a.format(work=self.work) for a in args)],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=600,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise SystemExit(f"{self.label}: cxbot {' '.join(args)} failed:\n{result.stderr}")
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def prepare(self) -> None:
        (self.work / "answers.csv").write_text(ANSWERS, encoding="utf-8")
        self.run(("journey", "load", str(EXAMPLE)))
        for args in COMMANDS.values():
            self.run(args)

    def medians(self, name: str) -> tuple[float, float]:
        walls, cpus = zip(*self.times[name], strict=True)
        return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="a git revision (default: the merge-base of HEAD and main)")
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each command per tree (default 9)")
    options = parser.parse_args()
    baseline = options.baseline or git("merge-base", "HEAD", "main")
    short = git("rev-parse", "--short", baseline)
    if git("rev-parse", f"{baseline}^{{tree}}") == git("rev-parse", "HEAD^{tree}"):
        print(f"note: the baseline {short} has the same code as this tree; pass --baseline REV", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="cxbot-startup-") as scratch:
        export(baseline, Path(scratch) / "baseline")
        trees = [
            Tree(f"baseline {short}", Path(scratch) / "baseline", Path(scratch) / "work-baseline"),
            Tree("this tree", ROOT, Path(scratch) / "work-this"),
        ]
        for tree in trees:
            tree.prepare()
        load_before = os.getloadavg()[0]
        for _ in range(options.runs):
            for name, args in COMMANDS.items():
                for tree in trees:
                    tree.times[name].append(tree.run(args))
        load_after = os.getloadavg()[0]

    width = max(len(name) for name in COMMANDS)
    head = "".join(f"{tree.label:>26}" for tree in trees)
    print(f"{'median of ' + str(options.runs) + ' runs':<{width}}{head}")
    print(f"{'':<{width}}" + f"{'wall s':>15}{'cpu s':>11}" * len(trees))
    results = {}
    for name in COMMANDS:
        cells = [tree.medians(name) for tree in trees]
        print(f"{name:<{width}}" + "".join(f"{wall:>15.2f}{cpu:>11.2f}" for wall, cpu in cells))
        results[name] = {
            tree.label: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for tree, (w, c) in zip(trees, cells, strict=True)
        }
    print(f"load average (1 min) {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores")
    print(json.dumps({"baseline": short, "runs": options.runs, "load": [load_before, load_after], "results": results}))


if __name__ == "__main__":
    main()
