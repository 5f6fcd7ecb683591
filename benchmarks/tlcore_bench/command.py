"""``tlcore bench``: its arguments and what it runs (registered by :mod:`tlcore_bench.plugin`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tlcore_bench.run import resolve_plan, run_bench

__all__ = ["configure", "final_line", "run"]


def _names(text: str | None) -> list[str] | None:
    """A comma-separated option as a list of names, or None when it was not given."""
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tlcore bench``."""
    parser.add_argument("--quick", action="store_true", help="the quick plan: one small task, one seed (minutes)")
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated backends (default: torch,keras-tensorflow,keras-torch,keras-jax)",
    )
    parser.add_argument("--seeds", type=int, default=None, help="run seeds 0 .. N-1 (default: the plan's)")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated parts to run: speed (cached frozen phase, library overhead), parity, transfer "
        "(needs parity) (default: all)",
    )
    parser.add_argument(
        "--tasks",
        default=None,
        help="comma-separated parity tasks to run parity and transfer on, for example digits,mnist-5k/100 "
        "(default: the plan's)",
    )
    parser.add_argument("--out", required=True, help="benchmark folder: results, report.md, report.json, plots")
    parser.add_argument("--no-progress", action="store_true", help="hide progress lines")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark plan the arguments select, print its report, every check's verdict, and those not passed.

    An undecided check (its data cannot decide it) is printed with its reason
    and is not counted as not passed; a failed or unfinished one is.
    """
    plan = resolve_plan(args.quick, _names(args.backends), args.seeds, _names(args.only), _names(args.tasks))
    report = run_bench(plan, args.out, progress=not args.no_progress, command="tlcore " + " ".join(sys.argv[1:]))
    print((Path(args.out) / "report.md").read_text())
    checks = report["checks"]
    print(final_line(checks, args.out))
    return 0


def final_line(checks: dict[str, dict[str, str]], out: str) -> str:
    """The command's last line: where the report is, then the checks not passed, then those undecided."""
    failed = [name for name, check in checks.items() if check["verdict"] in ("fail", "incomplete")]
    undecided = [name for name, check in checks.items() if check["verdict"] == "undecided"]
    line = f"wrote {out}/report.md, report.json and plots; checks not passed: {', '.join(failed) or 'none'}"
    if undecided:
        line += f"; undecided (see the reasons above): {', '.join(undecided)}"
    return line
