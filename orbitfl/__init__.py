"""orbitfl: a satellite-constellation network simulator with federated-learning workloads.

Subpackages, from the top layer down (docs/architecture.md): ``orbitfl.studies``
(applications), ``orbitfl.cli`` and ``orbitfl.api`` (front doors), ``orbitfl.commands`` and
``orbitfl.sweeps``, ``orbitfl.engine`` (one run: the two worlds wired together),
``orbitfl.scenario`` and ``orbitfl.analysis`` (reading run directories, figures),
``orbitfl.constellation`` (physics and the network engine), ``orbitfl.fl`` (learning) and
``orbitfl.rundir`` (the run directory's declaration and writer), ``orbitfl.core`` (the
kernel).
"""

from pathlib import Path

__version__ = "0.1.0"


def _checkout_subpackages() -> list[str]:
    """From a checkout's root (``python -c``, ``python -m pytest``), ``orbitfl`` is this
    folder, which lacks the sibling folders that setup.py maps into the package
    (``constellation/`` is ``orbitfl.constellation``): the checkout joins the package path so
    that they import as they do from a wheel or the editable install's link tree."""
    here = Path(__file__)
    checkout = here.resolve().parents[1]
    if (here.parent / "constellation").is_dir() or not (checkout / "setup.py").is_file():
        return []
    return [str(checkout)]


__path__ += _checkout_subpackages()

_API = ("load_scenario", "contacts", "contact_report", "run", "open_run", "sweep",
        "open_sweep", "Run", "Sweep")


def __getattr__(name: str):
    """``orbitfl.run`` and the rest of ``orbitfl.api``, imported when first used (so that
    ``import orbitfl`` and the command start without torch)."""
    if name in _API:
        from orbitfl import api

        return getattr(api, name)
    raise AttributeError(f"module 'orbitfl' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API beside the module's own names (``dir(orbitfl)``, tab completion)."""
    return sorted({*globals(), *_API})
