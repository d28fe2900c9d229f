"""`make bench` / `make bench-quick`: the dialer's performance figures, each a ratio against a baseline
measured in the same run on the same Redis (see docs/benchmarks.md). Prints one table (figure, goal,
PASS/FAIL) and writes bench/results.json. Exits 0 whatever the figures (``--strict``: 1 when a goal
FAILs); 2 when a benchmark could not run. Logs of every process are left in var/bench/NAME/.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Figure, clean_dir, fmt, git_commit, machine_info  # noqa: E402
from config import Settings  # noqa: E402
from config.logging import configure_logging  # noqa: E402

BENCHMARKS = ("dispatch", "fanout", "promotion", "pacing", "growth", "fsync")
RESULTS = ROOT / "bench" / "results.json"


@dataclass
class Context:
    """What a benchmark gets: the mode, its own log directory, the repository root, the workers' and
    scheduler's DIALER_* settings."""

    quick: bool
    var: Path
    root: Path = ROOT
    dialer_env: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def log(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.started:6.1f} s] {text}", flush=True)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def table(figures: list[Figure]) -> str:
    rows = [("benchmark", "figure", "value", "goal", "result", "baseline / note")]
    for f in figures:
        goal = f"{f.op} {f.goal:g}" if f.goal is not None else "-"
        value = fmt(f.value) + (f" {f.unit}" if f.unit and f.value is not None else "")
        rows.append((f.bench, f.name, value, goal, f.result, f.error or f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 15)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (under 3 minutes in all)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this benchmark (repeatable, or comma-separated): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal FAILs")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the results JSON")
    args = parser.parse_args()
    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in only if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    chosen = [n for n in BENCHMARKS if not only or n in only]
    signal.signal(signal.SIGTERM, _interrupted)

    var = ROOT / "var" / "bench"
    var.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    # the in-process steps (intake, launch, claims) log as a worker would, into var/bench/bench.log
    configure_logging(settings.model_copy(update={"log_format": "json"}))
    log_file = open(var / "bench.log", "w")  # noqa: SIM115 - open for the whole run
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    dialer_env = {"DIALER_LOG_FORMAT": "json", "DIALER_LOG_LEVEL": settings.log_level}
    machine = machine_info()
    mode = "quick" if args.quick else "full"
    started = time.monotonic()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"bench ({mode}): {', '.join(chosen)} — {machine['cpu_count']} cores, Python {machine['python']}, "
        f"Redis {machine.get('redis', '?')}, hiredis {'on' if machine['hiredis'] else 'off'}, "
        f"{date}; logs in {var}",
        flush=True,
    )
    figures: list[Figure] = []
    timings: dict[str, dict[str, float]] = {}
    try:
        for name in chosen:
            module = importlib.import_module(f"bench.{name}")
            ctx = Context(args.quick, clean_dir(var / name), dialer_env=dialer_env)
            load = round(os.getloadavg()[0], 2)
            print(f"{name}: (load average {load})", flush=True)
            t = time.monotonic()
            try:
                got = module.run(ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                (ctx.var / "error.log").write_text(traceback.format_exc())
                print(f"  {name} could not run: {type(exc).__name__}: {exc} (see {ctx.var}/error.log)")
                got = [Figure(name, "(did not run)", None, error=f"{type(exc).__name__}: {exc}")]
            timings[name] = {"seconds": round(time.monotonic() - t, 1), "loadavg_at_start": load}
            figures += got
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 130
    finally:
        log_file.close()

    print()
    print(table(figures))
    elapsed = time.monotonic() - started
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"\n{len(figures)} figures in {elapsed:.0f} s; results in {shown}")
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, Any] = {
        "date": date,
        "mode": mode,
        "benchmarks": chosen,
        "commit": git_commit(),
        "machine": machine,
        "settings": {
            "scheduler_tick_s": settings.scheduler_tick_s,
            "claim_batch": settings.claim_batch,
            "lease_s": settings.lease_s,
            "expand_chunk": settings.expand_chunk,
            "log_level": settings.log_level,
            "appendfsync": "always",
        },
        "seconds": round(elapsed, 1),
        "runs": timings,
        "figures": [f.as_json() for f in figures],
    }
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if any(f.error for f in figures):
        return 2
    if args.strict and any(f.passed is False for f in figures):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
