"""``orbitfl init DIR``: a pip user's starting point. The scenario library shipped in the
package (``orbitfl.scenarios``) and the element sets its scenarios name (``orbitfl.tle``)
are copied into DIR in the repository's layout (``DIR/scenarios/`` with its subfolders,
``DIR/tle/*.tle``), so that every relative path inside them
(``tle: ../tle/planet_2024-07-16.tle``, a sweep's ``base: ../x.yaml``) resolves as it does
in a checkout: nothing is rewritten."""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from orbitfl.core.atomic import atomic_write
from orbitfl.core.errors import InputError
from orbitfl.scenario.strict_yaml import load_yaml

if TYPE_CHECKING:
    from importlib.abc import Traversable

SCENARIOS_PACKAGE = "orbitfl.scenarios"
ELEMENTS_PACKAGE = "orbitfl.tle"
ELEMENTS_FOLDER = "tle"  # where the scenarios' relative element paths point, beside scenarios/
PROVENANCE = "SOURCES.md"  # where each element set came from; copied with them


LIBRARY_SUFFIXES = (".yaml", ".yml", ".md")  # scenarios, sweeps and their READMEs


@dataclass(frozen=True)
class Copied:
    scenarios: list[Path]
    sweeps: list[Path]
    elements: list[Path]
    other: list[Path]

    @property
    def all(self) -> list[Path]:
        return [*self.scenarios, *self.sweeps, *self.elements, *self.other]


def scenario_library() -> Traversable:
    """The packaged scenario folder. An editable install made before the library became a
    package maps no ``orbitfl.scenarios``: its checkout's ``scenarios/`` is the same
    folder."""
    try:
        return resources.files(SCENARIOS_PACKAGE)
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "scenarios"
        if checkout.is_dir():
            return checkout
        raise InputError(f"this installation of orbitfl holds no scenario library "
                         f"({SCENARIOS_PACKAGE}); reinstall orbitfl") from None


def init(folder: Path, force: bool = False) -> Copied:
    """Copy the library into ``folder`` (created if needed). A folder that already holds
    anything is refused unless ``force``: then files of the same names are replaced and
    everything else is left alone."""
    from orbitfl.rundir.writer import check_output_dir

    folder = Path(folder)
    check_output_dir(folder, "folder to copy into")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise InputError(f"{folder}: folder is not empty; choose an empty or new folder, or "
                         "give --force to copy into it (files of the same names are replaced)")
    library = _library_files(scenario_library())
    _refuse_links(folder, [f"scenarios/{relative}" for relative, _ in library]
                  + [f"{ELEMENTS_FOLDER}/{PROVENANCE}"])
    copied = Copied([], [], [], [])
    elements = set()
    documents = {relative: _library_document(relative, source)  # all read before any copy
                 for relative, source in library if relative.endswith((".yaml", ".yml"))}
    for relative, source in library:
        target = _copy(source, folder / "scenarios" / relative)
        if relative not in documents:
            copied.other.append(target)
            continue
        document = documents[relative]
        (copied.sweeps if "parameters" in document else copied.scenarios).append(target)
        elements |= _element_file(relative, document)
    shipped = resources.files(ELEMENTS_PACKAGE)
    copied.elements.extend(_copy(shipped / name, folder / ELEMENTS_FOLDER / name)
                           for name in sorted(elements))
    if elements and (shipped / PROVENANCE).is_file():
        copied.other.append(_copy(shipped / PROVENANCE, folder / ELEMENTS_FOLDER / PROVENANCE))
    return copied


def _refuse_links(folder: Path, relatives: list[str]) -> None:
    """Every folder the copy writes into lies inside ``folder``: a subfolder that is a
    symbolic link (``scenarios -> /etc``) would take ``--force``'s writes outside it, so
    it is refused before anything is copied."""
    for relative in relatives:
        here = folder
        for part in posixpath.dirname(relative).split("/"):
            here = here / part
            if here.is_symlink():
                raise InputError(f"{here}: is a symbolic link; orbitfl init writes only "
                                 f"inside {folder}: remove the link or choose another folder")


def _library_files(folder: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    """(path relative to the library, file) of every scenario, sweep and README, in
    subfolders too; package files (``__init__.py``, caches) are not the library."""
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        relative = posixpath.join(prefix, entry.name)
        if entry.is_dir() and entry.name != "__pycache__":
            found += _library_files(entry, relative)
        elif entry.is_file() and entry.name.endswith(LIBRARY_SUFFIXES):
            found.append((relative, entry))
    return found


def _library_document(relative: str, source: Traversable) -> dict:
    """A library file's YAML through the scenarios' strict reader: a damaged installation
    is one line naming the file, found before anything is copied."""
    where = Path(*SCENARIOS_PACKAGE.split(".")) / relative
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: cannot read the packaged file ({type(err).__name__}); "
                         "reinstall orbitfl") from None
    document = load_yaml(text, where)
    return document if isinstance(document, dict) else {}


def _element_file(relative: str, document: dict) -> set[str]:
    """The packaged element set a scenario's ``constellation.tle`` names, as a path into
    the ``tle/`` folder beside ``scenarios/``. A scenario naming a file anywhere else is the
    library's own mistake, and stops the copy."""
    tle = (document.get("constellation") or {}).get("tle")
    if tle is None:
        return set()  # a sweep, or a Walker shell: no element file
    where = posixpath.normpath(posixpath.join("scenarios", posixpath.dirname(relative),
                                              str(tle)))
    parent, name = posixpath.split(where)
    if parent != ELEMENTS_FOLDER or not (resources.files(ELEMENTS_PACKAGE) / name).is_file():
        raise InputError(f"{relative}: constellation.tle: {tle!r} is not one of the element "
                         f"sets shipped in {ELEMENTS_PACKAGE}")
    return {name}


def _copy(source: Traversable, target: Path) -> Path:
    """The file's bytes, unchanged, written whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    atomic_write(target, lambda partial: partial.write_bytes(data))
    return target


def next_steps(folder: Path, copied: Copied) -> str:
    """What ``orbitfl init`` prints: what was copied and the commands to try first."""
    scenarios = folder / "scenarios"
    first = scenarios / "quickstart.yaml"
    if first not in copied.scenarios and copied.scenarios:
        first = copied.scenarios[0]
    quoted = shlex.quote(str(first))
    lines = [f"copied {len(copied.scenarios)} scenarios, {len(copied.sweeps)} sweeps and "
             f"{len(copied.elements)} element sets into {folder}",
             "next:",
             f"  orbitfl validate {quoted}",
             f"  orbitfl run {quoted} --set fl.rounds=1 --set duration=6h   # a first look",
             f"  orbitfl run {quoted} --out runs/first",
             "  orbitfl report runs/first --out report"]
    if copied.sweeps:
        lines.append(f"  orbitfl sweep {shlex.quote(str(copied.sweeps[0]))}")
    if (scenarios / "README.md") in copied.other:
        lines.append(f"{scenarios / 'README.md'} says what each scenario answers.")
    return "\n".join(lines)
