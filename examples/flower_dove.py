"""A Flower app over Planet Doves: runs ``examples/flower/flower-dove.yaml``, in which an
unmodified Flower ``NumPyClient`` (``examples/flower/dove_app.py``) trains and Flower's
FedAdam aggregates, while orbitfl decides when each Dove trains and when its bytes cross.

    .venv/bin/python examples/flower_dove.py [OUT]     # needs: pip install 'orbitfl[flower]'

The scenario names the Flower adapter like any strategy of your own (``fl.strategy:
{class: "orbitfl.fl.flower_adapter:FlowerStrategy", options: {...}}``); this script puts
the app's folder on the import path and takes the element file shipped inside orbitfl, so
that it runs from any folder.
"""

import sys
from importlib.resources import files
from pathlib import Path

import flwr

import orbitfl

APP = Path(__file__).resolve().parent / "flower"


def main(out: str) -> None:
    sys.path.insert(0, str(APP))  # dove_app, as the scenario names it
    scenario = orbitfl.load_scenario(APP / "flower-dove.yaml", {
        "constellation.tle": str(files("orbitfl.tle") / "planet_2024-07-16.tle")})
    run = orbitfl.run(scenario, out=out, progress=False)
    for r in run.rounds.itertuples():
        print(f"round {r.round}: accuracy {r.accuracy:.3f} at {r.sim_time_s / 3600:.1f} h, "
              f"{r.bytes_up / 1e3:.0f} kB up, {r.bytes_down / 1e3:.0f} kB down")
    print(f"Flower {flwr.__version__} FedAdam over {len(run.manifest['satellites'])} Doves: "
          f"{run.path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/flower-dove")
