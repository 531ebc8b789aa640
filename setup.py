"""Package discovery for the repository's layout (the rest of the metadata is in
pyproject.toml). Each top-level folder installs under the single ``orbitfl`` namespace,
and every folder below it, with every file in it that is not compiled Python, goes into
the wheel: a new subpackage or data file needs no list to be edited."""

from setuptools import find_namespace_packages, setup

# Import name -> source folder.
ROOTS = {"orbitfl": "orbitfl", "orbitfl.constellation": "constellation", "orbitfl.fl": "fl",
         "orbitfl.analysis": "analysis", "orbitfl.tle": "tle",
         "orbitfl.scenarios": "scenarios"}  # the scenario library, for `orbitfl init`


def packages() -> list[str]:
    """Every folder under each root, named inside the ``orbitfl`` namespace."""
    found = []
    for name, folder in ROOTS.items():
        below = find_namespace_packages(folder, exclude=["__pycache__", "*.__pycache__"])
        found += [name, *(f"{name}.{sub}" for sub in below)]
    return found


setup(package_dir=ROOTS, packages=packages(), package_data={"": ["*"]},
      exclude_package_data={"": ["*.pyc", "*.pyo"]})
