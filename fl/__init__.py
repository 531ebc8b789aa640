"""``orbitfl.fl`` (docs/architecture.md). This folder installs only under the orbitfl
namespace: imported under its bare folder name (from the repository root) it would load a
second copy of every module, with classes that are not the package's own, so it refuses."""

if __name__ != "orbitfl.fl":
    raise ImportError(f"import orbitfl.fl, not {__name__} (this folder installs only as "
                      "orbitfl.fl)")
