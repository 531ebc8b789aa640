"""``orbitfl validate``'s and the run's check of the extensions a scenario names
(``fl/registry.py``): imported and checked before anything is simulated. Imports torch
only when a scenario names one that is not built in."""

from __future__ import annotations

from orbitfl.core.errors import InputError
from orbitfl.fl.registry import PluginError
from orbitfl.scenario import Scenario


def where_plugin(err: PluginError) -> str:
    """The YAML path a plugin error is about, from the kind its message starts with."""
    kind = str(err).split(" ", 1)[0]
    return {"strategy": "fl.strategy", "model": "model", "dataset": "data"}.get(kind, "scenario")


def check_plugins(scenario: Scenario) -> None:
    """Import every extension the scenario names that is not built in and check its
    interface (a Strategy subclass and its options, a factory's signature, the schedule
    mode): one ``InputError`` line, before anything is simulated."""
    plugins = scenario.plugin_entries()
    if not plugins:
        return
    from orbitfl.fl.extensions import factory, strategy_class, strategy_options

    try:
        if "fl.strategy" in plugins:
            fl = scenario.fl
            assert fl is not None  # a strategy extension is named only in an fl: section
            cls = strategy_class(plugins["fl.strategy"])
            strategy_options(cls, plugins["fl.strategy"], fl.strategy_options)
            if cls.asynchronous != (fl.schedule.mode == "async"):
                mode = "async" if cls.asynchronous else "sync"
                raise PluginError(f"strategy {plugins['fl.strategy'].name!r} runs with "
                                  f"schedule.mode {mode}, not {fl.schedule.mode}")
        if "model" in plugins:
            factory(plugins["model"], classes=2, **(scenario.model.options or {}))
        if "data" in plugins:
            factory(plugins["data"], image_size=scenario.data.image_size, seed=scenario.seed,
                    **(scenario.data.options or {}))
    except PluginError as err:
        raise InputError(f"{where_plugin(err)}: {err}") from None
