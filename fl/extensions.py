"""Loading and checking the extension points a scenario names (``fl/registry.py``): a
strategy class, a model factory, a dataset factory. Every problem (a missing module, an
object of the wrong kind, a wrong signature, options it refuses) is one ``PluginError``
line, raised when a scenario is validated, before anything is simulated."""

from __future__ import annotations

import dataclasses
import inspect
from types import SimpleNamespace
from typing import Any, Callable, Mapping

from pydantic import TypeAdapter, ValidationError
from torch import nn

from .registry import Entry, PluginError, entry, load
from .strategy import FLConfig, Strategy


def strategy_class(item: Entry) -> type[Strategy]:
    """The ``Strategy`` subclass ``item`` names."""
    cls = load(item)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise PluginError(f"strategy {item.name!r} is {_what(cls)}, not a subclass of "
                          "orbitfl.fl.strategy.Strategy")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise PluginError(f"strategy {item.name!r} does not implement {missing}")
    return cls


def strategy_options(cls: type[Strategy], item: Entry, options: Mapping[str, Any] | None
                     ) -> Any:
    """``options`` validated into the strategy's ``Options`` dataclass (None when it
    declares none and none are given)."""
    if cls.Options is None:
        if options:
            raise PluginError(f"strategy {item.name!r} takes no options (it declares no "
                              f"Options), got {', '.join(map(str, options))}")
        return None
    if dataclasses.is_dataclass(cls.Options):  # pydantic would drop unknown keys silently
        known = [f.name for f in dataclasses.fields(cls.Options)]
        unknown = [str(key) for key in options or {} if key not in known]
        if unknown:
            raise PluginError(f"strategy {item.name!r} refuses its options: unknown "
                              f"{', '.join(unknown)}; known: {', '.join(known) or 'none'}")
    try:
        return TypeAdapter(cls.Options).validate_python(dict(options or {}))
    except ValidationError as err:
        problems = "; ".join(_problem(e) for e in err.errors(include_url=False))
        raise PluginError(f"strategy {item.name!r} refuses its options: {problems}") from None


def make_strategy(item: Entry, model: nn.Module, config: FLConfig, data: Any,
                  options: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy of a run, from its class's ``create``."""
    cls = strategy_class(item)
    return cls.create(model, config, data, strategy_options(cls, item, options))


def factory(item: Entry, **arguments: Any) -> Callable[..., Any]:
    """The callable a model or dataset entry names, checked to accept ``arguments`` (the
    ones orbitfl passes and the scenario's options) by name."""
    function = load(item)
    if not callable(function):
        raise PluginError(f"{item.kind} {item.name!r} is {_what(function)}, not a function")
    try:
        inspect.signature(function).bind(**arguments)
    except TypeError as err:
        wanted = ", ".join(arguments)
        raise PluginError(f"{item.kind} {item.name!r}: its signature "
                          f"{inspect.signature(function)} does not take ({wanted}): "
                          f"{err}") from None
    except ValueError:  # a builtin without a signature: the call itself will tell
        pass
    return function


def make_model(item: Entry, classes: int, options: Mapping[str, Any] | None = None
               ) -> nn.Module:
    """A model from a factory ``build(classes, **options) -> nn.Module``."""
    model = factory(item, classes=classes, **dict(options or {}))(classes=classes,
                                                                   **dict(options or {}))
    if not isinstance(model, nn.Module):
        raise PluginError(f"model {item.name!r} returned {_what(model)}, not a "
                          "torch.nn.Module")
    return model


def _problem(error: Any) -> str:
    """One pydantic error as 'key: problem' (a check of the whole dataclass names none)."""
    where = ".".join(map(str, error["loc"]))
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _what(obj: Any) -> str:
    return f"a {type(obj).__name__}" if not isinstance(obj, type) else f"the class {obj.__name__}"


def strategy_named(name: str, model: nn.Module, config: FLConfig, ses: Any = None,
                   options: dict | None = None) -> Strategy:
    """A built-in or installed strategy by name, for Python callers (benchmarks, tests):
    ``ses``, the server's shared set, is the only part of the data a built-in reads."""
    return make_strategy(entry("strategy", name), model, config, SimpleNamespace(ses=ses),
                         options)
