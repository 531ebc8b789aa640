"""orbitfl: a satellite-constellation network simulator with federated-learning workloads.

Subpackages: ``orbitfl.constellation`` (physics and the network engine), ``orbitfl.fl``
(learning), ``orbitfl.analysis`` (reading run directories, figures). The modules directly
in ``orbitfl`` read scenarios and wire the two worlds together.
"""

__version__ = "0.1.0"

_API = ("load_scenario", "contacts", "run", "open_run", "sweep", "open_sweep", "Run", "Sweep")


def __getattr__(name: str):
    """``orbitfl.run`` and the rest of ``orbitfl.api``, imported when first used (so that
    ``import orbitfl`` and the command start without torch)."""
    if name == "sweep":  # the module orbitfl.sweep, callable as orbitfl.api.sweep: once
        import orbitfl.sweep  # imported, the package's attribute is the module anyway

        return orbitfl.sweep
    if name in _API:
        from orbitfl import api

        return getattr(api, name)
    raise AttributeError(f"module 'orbitfl' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API beside the module's own names (``dir(orbitfl)``, tab completion)."""
    return sorted({*globals(), *_API})
