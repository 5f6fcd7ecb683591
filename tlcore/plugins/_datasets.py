"""Opening a registered dataset: its options checked against the loader's signature, its result checked.

A loader is called as ``loader(**options)`` and returns a
:class:`tlcore.data.DatasetSource`. Before the call, each option is checked
against the loader's keyword parameters and their annotations, so that a
wrong option is reported by its name, its value and what is expected,
instead of as the ``TypeError`` of whatever inside the loader received it.
Annotations that cannot be checked (``Any``, a string that does not
resolve) accept any value; the loader checks those itself.
"""

from __future__ import annotations

import importlib.util
import inspect
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from tlcore._errors import ConfigError, DataError, PluginError, did_you_mean
from tlcore.plugins._infos import DatasetInfo

if TYPE_CHECKING:
    from tlcore.data import DatasetSource

__all__ = ["check_options", "describe_options", "open_registered_dataset"]

_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _signature(loader: Callable[..., Any]) -> inspect.Signature | None:
    for resolve in (True, False):
        try:
            return inspect.signature(loader, eval_str=resolve)
        except (NameError, SyntaxError, TypeError, AttributeError):  # an annotation that does not resolve
            continue
        except ValueError:  # no signature (some builtins)
            return None
    return None


def _type_name(annotation: Any) -> str:
    """``str | Path``, ``int``, ``None``, ``'a' | 'b'``: an annotation as a user reads it."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return " | ".join(_type_name(arg) for arg in get_args(annotation))
    if origin is Literal:
        return " | ".join(repr(arg) for arg in get_args(annotation))
    if isinstance(annotation, type) and origin is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _checkable(annotation: Any) -> bool:
    return annotation is not inspect.Parameter.empty and annotation is not Any and not isinstance(annotation, str)


def _matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits ``annotation``; True where the annotation cannot be checked.

    TOML has no separate integer-valued floats, so an int fits ``float``;
    a bool does not fit ``int`` or ``float``.
    """
    if not _checkable(annotation):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return any(_matches(value, arg) for arg in get_args(annotation))
    if origin is Literal:
        return value in get_args(annotation)
    if origin is not None:
        return isinstance(value, origin) if isinstance(origin, type) else True
    if annotation in (int, float) and isinstance(value, bool):
        return False
    if annotation is float:
        return isinstance(value, (int, float))
    return isinstance(value, annotation) if isinstance(annotation, type) else True


def _keyword_parameters(signature: inspect.Signature) -> dict[str, inspect.Parameter]:
    return {name: p for name, p in signature.parameters.items() if p.kind in _KEYWORD_KINDS}


def describe_options(loader: Callable[..., Any]) -> str:
    """The options ``loader`` takes, as ``path (str | Path, required), channels (int, default 3)``.

    ``"none"`` when it takes none; ``"unknown"`` when it has no signature.
    """
    signature = _signature(loader)
    if signature is None:
        return "unknown"
    parts = []
    for name, parameter in _keyword_parameters(signature).items():
        details = [_type_name(parameter.annotation)] if _checkable(parameter.annotation) else []
        details.append("required" if parameter.default is inspect.Parameter.empty else f"default {parameter.default!r}")
        parts.append(f"{name} ({', '.join(details)})")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        parts.append("any other keyword")
    return ", ".join(parts) or "none"


def check_options(loader: Callable[..., Any], options: Mapping[str, Any], *, what: str) -> None:
    """Raise a ConfigError unless ``loader(**options)`` fits its signature and annotations.

    ``what`` names the loader in the message (``dataset 'image-folder'``).
    An unknown option is named with a did-you-mean and the options there
    are; a wrong-typed one with its value, its type and the expected type;
    a missing required one by its name.
    """
    signature = _signature(loader)
    if signature is None:
        return
    parameters = _keyword_parameters(signature)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    listing = describe_options(loader)
    available = f"Its options: {listing}." if listing != "none" else "It takes no options."
    unknown = [key for key in options if key not in parameters]
    if unknown and not takes_any:
        names = ", ".join(repr(key) for key in unknown)
        hints = "".join(did_you_mean(key, parameters) for key in unknown)
        raise ConfigError(f"{what} has no option{'s' if len(unknown) > 1 else ''} {names}.{hints} {available}")
    for key, value in options.items():
        parameter = parameters.get(key)
        if parameter is not None and not _matches(value, parameter.annotation):
            raise ConfigError(
                f"{what}: option {key}={value!r} is of type {type(value).__name__}; "
                f"expected {_type_name(parameter.annotation)}. {available}"
            )
    missing = [name for name, p in parameters.items() if p.default is inspect.Parameter.empty and name not in options]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise ConfigError(
            f"{what} needs the option{'s' if len(missing) > 1 else ''} {names} "
            f"(in a recipe: [data] options = {{ {missing[0]} = ... }}). {available}"
        )


def open_registered_dataset(info: DatasetInfo, plugin: str, options: Mapping[str, Any]) -> DatasetSource:
    """Call ``info``'s loader with ``options``, checked first; the result must be a DatasetSource.

    A missing requirement is a DataError with the install hint; a bad option
    a ConfigError (:func:`check_options`); a loader that returns anything
    else than a :class:`tlcore.data.DatasetSource` a PluginError naming
    ``plugin`` and the dataset.
    """
    from tlcore.data import DatasetSource
    from tlcore.plugins._manager import import_object

    name = info.name
    missing = [module for module in info.requires if importlib.util.find_spec(module) is None]
    if missing:
        hint = info.install_hint or "pip install 'tlcore[data]'"
        raise DataError(f"dataset {name!r} needs {', '.join(missing)}, which is not installed. Install: {hint}")
    where = f"dataset {name!r} (plugin {plugin!r})"
    if isinstance(info.loader, str):
        loader = import_object(info.loader, what=where)
        loader_name = info.loader
    else:
        loader = info.loader
        loader_name = getattr(loader, "__qualname__", repr(loader))
    check_options(loader, options, what=f"dataset {name!r}")
    source = loader(**options)
    if not isinstance(source, DatasetSource):
        raise PluginError(
            f"{where}: its loader {loader_name} returned {type(source).__name__}; expected a "
            "tlcore.data.DatasetSource (a Dataset alone is returned as DatasetSource(train=dataset))."
        )
    return source
