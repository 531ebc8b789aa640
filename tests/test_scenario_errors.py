"""Bad scenarios end with exit code 2 and ONE line naming the file, the YAML path and the
problem; never a traceback."""

import copy
import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import yaml

from orbitfl.core.options import parse_duration

from conftest import SCENARIOS, TLE_DIR


def base_document() -> dict:
    document = yaml.safe_load((SCENARIOS / "quickstart.yaml").read_text())
    document["constellation"]["tle"] = str(TLE_DIR / "planet_2024-07-16.tle")
    return document


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orbitfl.cli", *args],
                          capture_output=True, text=True, timeout=120)


def _set(document: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


DELETE = object()

CASES = [
    ("seeed", 3, "top level: unknown key 'seeed' (did you mean 'seed'?)"),
    ("fl.schedule.quorum", 3, "fl.schedule: unknown key 'quorum'"),
    ("fl.rounds", "ten", "fl.rounds: input should be a valid integer"),
    ("fl.rounds", DELETE, "fl.rounds: missing required key"),
    ("fl.rounds", 0, "fl.rounds: input should be greater than 0"),
    ("constellation.tle", "no/such.tle", "constellation.tle: file not found"),
    ("duration", "-3h", "duration: expected a duration like"),
    ("fl.schedule.deadline", "soon", "fl.schedule.deadline: expected a duration"),
    ("ground_stations.min_elevation_deg", 95, "ground_stations.min_elevation_deg: input should "
                                              "be less than 90"),
    ("ground_stations.sites.1", "atlantis", "ground_stations.sites.1: unknown ground station "
                                            "'atlantis'"),
    ("data.imbalance_ratio", 0.5, "data.imbalance_ratio: input should be greater than or equal"),
    ("links.downlink.rate_mbps", -1, "links.downlink.rate_mbps: input should be greater than 0"),
    ("constellation.select.name", "NOPE*", "constellation.select: matches no satellite"),
    ("fl.schedule.min_clients", 50, "fl.schedule.min_clients: 50 exceeds the 8 selected"),
    ("epoch", "yesterday", "epoch: input should be a valid datetime"),
    ("constellation.walker", {"preset": "starlink-shell1"},
     "constellation: give exactly one of 'tle' (an element file) and 'walker'"),
    ("ground_stations.network", "mars", "ground_stations.network: unknown network 'mars'"),
    ("ground_stations.sites", [], "ground_stations: give a network or at least one site"),
]


@pytest.mark.parametrize("path, value, message", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_gives_one_line_and_exit_2(tmp_path: Path, path, value, message):
    document = copy.deepcopy(base_document())
    _set(document, path, value)
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(yaml.safe_dump(document))
    result = run_cli("validate", str(scenario))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {scenario}: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path):
    scenario = tmp_path / "broken.yaml"
    scenario.write_text("name: x\nseed: [1, 2\nepoch: 2024-07-16\n")
    result = run_cli("validate", str(scenario))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {scenario}:")
    assert "YAML syntax error" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_corrupt_tle_names_the_tle_file_and_line(tmp_path: Path):
    lines = (TLE_DIR / "planet_2024-07-16.tle").read_text().splitlines()
    lines[4] = lines[4][:30] + ("1" if lines[4][30] != "1" else "2") + lines[4][31:]
    tle = tmp_path / "corrupt.tle"
    tle.write_text("\n".join(lines) + "\n")
    document = base_document()
    document["constellation"]["tle"] = str(tle)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(document))
    result = run_cli("run", str(scenario), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    lines_out = result.stderr.strip().splitlines()
    assert len(lines_out) == 1
    assert lines_out[0].startswith(f"error: {tle}:5: line 1 checksum is {lines[4][68]}, computed")
    assert not (tmp_path / "run").exists()


def test_missing_scenario_file():
    result = run_cli("validate", "does-not-exist.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: does-not-exist.yaml: scenario file not found"


def test_walker_scenario_with_a_network_validates(tmp_path: Path):
    document = base_document()
    document["constellation"] = {"walker": {"preset": "iridium-next", "phasing": 2},
                                 "select": {"limit": 12}}
    document["ground_stations"] = {"network": "polar", "sites": [{"id": "svalsat",
                                                                  "antennas": 2}]}
    scenario = tmp_path / "walker.yaml"
    scenario.write_text(yaml.safe_dump(document))
    result = run_cli("validate", str(scenario))
    assert result.returncode == 0, result.stderr
    assert "ok (12 satellites, 5 stations)" in result.stdout


def test_shipped_quickstart_validates():
    result = run_cli("validate", str(SCENARIOS / "quickstart.yaml"))
    assert result.returncode == 0, result.stderr
    assert "ok (8 satellites, 4 stations)" in result.stdout


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10min", 600), ("6h", 21600),
                                           ("2d", 172800), ("1h30min", 5400), (45, 45),
                                           ("0.5h", 1800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6 hours", "h", "-1h", 0, True, "1h 30x"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


# Issue 12: numbers that passed validation and then crashed or hung a run, YAML that was
# silently misread, and inputs whose echo made an error line unbounded. In-process through
# the CLI's entry point (exit code and stderr as a user sees them), without a subprocess each.

def validate_in_process(scenario: Path) -> tuple[int, str]:
    from orbitfl.cli import main

    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        code = main(["validate", str(scenario)])
    return code, err.getvalue()


def assert_one_line_error(code: int, stderr: str, scenario: Path, message: str) -> str:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {scenario}"), lines[0]
    assert message in lines[0], lines[0]
    assert len(lines[0]) < len(str(scenario)) + 300, "error line echoes too much input"
    return lines[0]


INF, NAN = float("inf"), float("nan")
INLINE_SITE = {"id": "home", "lat_deg": 48.0, "lon_deg": 11.0}
HUGE_WALKER = {"walker": {"planes": 1000, "per_plane": 1000, "altitude_km": 550.0,
                          "inclination_deg": 53.0}}
SYNTHETIC = {"dataset": "synthetic", "partition": "iid", "classes": 100, "image_size": 64,
             "samples_per_class_max": 100_000}
LIMIT_CASES = [
    # non-finite numbers, at every kind of float field
    ("duration", INF, "duration: a duration must be finite"),
    ("fl.schedule.deadline", NAN, "fl.schedule.deadline: a duration must be finite"),
    ("onboard.power.battery_wh", INF, "onboard.power.battery_wh: input should be a finite number"),
    ("links.uplink.rate_mbps", INF, "links.uplink.rate_mbps: input should be a finite number"),
    ("fl.lr", INF, "fl.lr: input should be a finite number"),
    ("links.uplink", {"band": "S", "eirp_dbw": NAN, "gt_dbk": -10, "bandwidth_mhz": 2},
     "links.uplink.eirp_dbw: input should be a finite number"),
    ("ground_stations.sites.0", {**INLINE_SITE, "alt_m": NAN},
     "ground_stations.sites.0.alt_m: input should be a finite number"),
    ("ground_stations.sites.0", {**INLINE_SITE, "lat_deg": NAN},
     "ground_stations.sites.0.lat_deg: input should be a finite number"),
    # absurd sizes: each names the limit
    ("duration", 1e308, "duration: a duration must be at most 366d (31622400 s)"),
    ("data.test_per_class", 10**12, "data.test_per_class: input should be less than or equal "
                                    "to 10000"),
    ("data.ses_per_class", 10**12, "data.ses_per_class: input should be less than or equal to"),
    ("data.acquisition.interval_s", 1e-9, "data.acquisition: window / interval_s is "
                                          "2.16e+13 images per satellite; at most 10000"),
    ("fl.rounds", 10**12, "fl.rounds: input should be less than or equal to 100000"),
    ("fl.local_epochs", 10**9, "fl.local_epochs: input should be less than or equal to"),
    ("fl.safe.ace_dim", 10**9, "fl.safe.ace_dim: input should be less than or equal to 4096"),
    ("links.sample_s", 1e-9, "links.sample_s: input should be greater than or equal to 1 "),
    ("links.uplink.rate_mbps", 1e300, "links.uplink.rate_mbps: input should be less than or "
                                      "equal to 1000000"),
    ("faults", {"reboot_rate_per_day": 1e12}, "faults.reboot_rate_per_day: input should be "
                                             "less than or equal to 100"),
    ("seed", 2**70, "seed: input should be less than or equal to 9223372036854775807"),
    ("constellation", HUGE_WALKER, "constellation.walker: planes x per_plane is 1000000 "
                                   "satellites; at most 100000"),
    ("data", SYNTHETIC, "data: the generated images take 458.3 GiB (10011000 of 3 x 64 x 64 "
                        "float32); at most 4 GiB"),
    # a fault after the mission ends would silently never happen
    ("faults", {"failures": [{"satellite": "FLOCK 4Y 1", "at": "3d"}]},
     "faults.failures.0.at: 3d is after the mission ends (duration 2d)"),
    ("faults", {"station_outages": [{"station": "svalsat", "start": "5d", "end": "6d"}]},
     "faults.station_outages.0.start: 5d is after the mission ends (duration 2d)"),
    # the name becomes a folder under runs/
    ("name", "../../etc", "name: must not contain '/' or '\\'"),
    ("name", "x" * 5000, "name: at most 200 bytes (it names the run directory)"),
]


@pytest.mark.parametrize("path, value, message", LIMIT_CASES,
                         ids=[f"{c[0]}={str(c[1])[:12]}" for c in LIMIT_CASES])
def test_non_finite_and_absurd_values_are_one_line(tmp_path: Path, path, value, message):
    document = base_document()
    _set(document, path, value)
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(yaml.safe_dump(document))
    code, stderr = validate_in_process(scenario)
    assert_one_line_error(code, stderr, scenario, f"{scenario}: {message}")


def base_text() -> str:
    return yaml.safe_dump(base_document(), sort_keys=False)


def test_duplicate_key_names_its_line(tmp_path: Path):
    text = base_text()
    lines = text.splitlines()
    fl_line = lines.index("fl:")
    lines.insert(fl_line + 1, "  rounds: 99")  # fl.rounds given twice
    scenario = tmp_path / "dup.yaml"
    scenario.write_text("\n".join(lines) + "\n")
    code, stderr = validate_in_process(scenario)
    rounds_again = next(i for i, line in enumerate(lines) if line.startswith("  rounds:")
                        and i > fl_line + 1)
    assert_one_line_error(code, stderr, scenario, f"{scenario}:{rounds_again + 1}:3: fl: "
                          f"duplicate key 'rounds' (first on line {fl_line + 2})")


@pytest.mark.parametrize("epoch, message", [
    ("2024-02-30T06:00:00Z", "epoch: invalid date or time 2024-02-30T06:00:00Z (day is out of "
                             "range for month)"),
    ("2016-12-31T23:59:60Z", "epoch: 2016-12-31T23:59:60Z is a leap second; a leap-second "
                             "time is not accepted as an epoch"),
])
def test_unquoted_invalid_timestamp_is_one_line(tmp_path: Path, epoch, message):
    document = base_document()
    del document["epoch"]
    scenario = tmp_path / "time.yaml"
    scenario.write_text(f"epoch: {epoch}\n" + yaml.safe_dump(document))
    code, stderr = validate_in_process(scenario)
    assert_one_line_error(code, stderr, scenario, f"{scenario}:1:8: {message}")


def test_deep_nesting_is_one_line(tmp_path: Path):
    scenario = tmp_path / "deep.yaml"
    scenario.write_text(base_text() + "extra: " + "[" * 5000 + "]" * 5000 + "\n")
    code, stderr = validate_in_process(scenario)
    assert_one_line_error(code, stderr, scenario, "nested more than 100 levels deep")


def test_recursive_alias_is_one_line(tmp_path: Path):
    scenario = tmp_path / "loop.yaml"
    scenario.write_text(base_text().replace("name: quickstart", "name: &loop [*loop]"))
    code, stderr = validate_in_process(scenario)
    assert_one_line_error(code, stderr, scenario, "an alias refers to itself")


BOMB = ("a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
                  for i in range(8)))


def test_alias_bomb_fails_fast_without_expanding(tmp_path: Path):
    """9^9 strings behind nine aliases: formatting them for an error line used to hang."""
    document = base_document()
    del document["name"]
    scenario = tmp_path / "bomb.yaml"
    scenario.write_text(BOMB + "name: *i\n" + yaml.safe_dump(document))
    result = run_cli("validate", str(scenario))  # its own process: a hang fails by timeout
    assert_one_line_error(result.returncode, result.stderr, scenario,
                          "aliases expand to more than 100000 values")


def test_long_input_is_not_echoed(tmp_path: Path):
    document = base_document()
    document["epoch"] = "y" * 5000
    document["fl"]["z" * 5000] = 1
    scenario = tmp_path / "long.yaml"
    scenario.write_text(yaml.safe_dump(document))
    code, stderr = validate_in_process(scenario)
    lines = stderr.strip().splitlines()  # two errors: one line each, neither echoes it all
    assert code == 2 and len(lines) == 2, stderr
    assert "epoch: input should be a valid" in lines[0] and "fl: unknown key" in lines[1]
    for line in lines:
        assert line.startswith(f"error: {scenario}: ") and len(line) < len(str(scenario)) + 300
        assert "y" * 61 not in line and "z" * 61 not in line


def test_oversized_scenario_file_is_refused_unread(tmp_path: Path):
    scenario = tmp_path / "big.yaml"
    scenario.write_text(base_text() + "#" * (1 << 20) + "\n")
    code, stderr = validate_in_process(scenario)
    assert_one_line_error(code, stderr, scenario,
                          f"{scenario}: scenario file is larger than the 1 MiB limit")


def test_oversized_element_file_is_refused_unread(tmp_path: Path):
    """64 MiB holds 100,000 satellites of 3LE text several times over; a bigger file is a
    mistake (a wrong path, a disk image), never read into memory."""
    tle = tmp_path / "huge.tle"
    with tle.open("wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)  # sparse: no disk used
    document = base_document()
    document["constellation"]["tle"] = str(tle)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(document))
    code, stderr = validate_in_process(scenario)
    assert code == 2
    assert stderr == f"error: {tle}: element file is larger than the 64 MiB limit\n"


def test_read_user_file_caps_streams_without_a_size(tmp_path: Path):
    """A FIFO or a device reports no size: the cap holds on what is read."""
    from orbitfl.core.errors import InputError, read_user_file

    with pytest.raises(InputError, match=r"^/dev/zero: element file is larger than the "
                                         r"1 MiB limit$"):
        read_user_file(Path("/dev/zero"), "element file", max_bytes=1 << 20)


def _write_images(folder: Path, count: int, colour=(90, 40, 90), size: int = 8) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (size, size), colour).save(folder / f"{i}.png")


def test_real_dataset_too_small_for_test_and_ses_is_input_error(tmp_path: Path):
    from orbitfl.core.errors import InputError
    from orbitfl.fl.federation import DataSpec, build_federation

    for c in range(10):
        _write_images(tmp_path / "eurosat" / f"class{c}", 3)
    spec = DataSpec(dataset="eurosat", partition="iid", path=tmp_path / "eurosat",
                    image_size=16, test_per_class=2, ses_per_class=1)
    with pytest.raises(InputError, match=r"^.*eurosat.*: class 'class0' has 3 images; "
                                         r"data.test_per_class \+ data.ses_per_class need 3 "
                                         r"and training at least one more$"):
        build_federation(spec, clients=2, seed=0)


def test_loveda_too_small_for_its_clients_is_input_error(tmp_path: Path):
    from orbitfl.core.errors import InputError
    from orbitfl.fl.federation import DataSpec, build_federation

    root = tmp_path / "loveda"
    _write_images(root / "Train" / "Urban" / "images_png", 3)
    _write_images(root / "Train" / "Urban" / "masks_png", 3, colour=(2, 2, 2))
    spec = DataSpec(dataset="loveda", task="segmentation", partition="iid", path=root,
                    image_size=16, ses_per_class=1)
    with pytest.raises(InputError, match=r"LoveDA folder has too few tiles for 8 clients"):
        build_federation(spec, clients=8, seed=0)


def test_clients_without_training_images_are_input_error():
    """Two images cannot feed four clients: two of them would train on nothing."""
    from orbitfl.core.errors import InputError
    from orbitfl.fl.federation import DataSpec, build_federation

    spec = DataSpec(dataset="synthetic", partition="iid", classes=2, samples_per_class_max=1,
                    image_size=16, test_per_class=1, ses_per_class=1)
    with pytest.raises(InputError, match=r"^data: 2 of 4 clients get no training image "
                                         r"\(first: client 2\): the iid partition of 2 "):
        build_federation(spec, clients=4, seed=0)


def test_a_satellite_that_images_nothing_is_input_error():
    from orbitfl.core.errors import InputError
    from orbitfl.fl.federation import DataSpec, build_federation
    from orbitfl.fl.geo.acquisition import GroundTrack

    times = np.arange(0.0, 600.0, 60.0)
    lit, dark = (GroundTrack(times, np.zeros(10), np.zeros(10), np.full(10, sun))
                 for sun in (45.0, -30.0))
    spec = DataSpec(image_size=16, test_per_class=1, ses_per_class=1)
    with pytest.raises(InputError, match=r"^data: 1 of 2 clients get no training image "
                                         r"\(first: client 1\): its ground track has no sunlit"):
        build_federation(spec, clients=2, seed=0, tracks=[lit, dark])


def test_a_fleet_whose_images_exceed_memory_is_input_error(monkeypatch):
    """The schema bounds one satellite's images; the fleet's total is checked before any
    tile is rendered (the limit is lowered here so that two tiny tracks exceed it)."""
    from orbitfl.core.errors import InputError
    from orbitfl.fl import datasets, federation
    from orbitfl.fl.geo.acquisition import GroundTrack

    monkeypatch.setattr(datasets, "MAX_IMAGE_BYTES", 40 * 3 * 16 * 16 * 4 - 1)
    track = GroundTrack(np.arange(20.0), np.zeros(20), np.zeros(20), np.full(20, 45.0))
    spec = federation.DataSpec(image_size=16, test_per_class=1, ses_per_class=1)
    with pytest.raises(InputError, match=r"^data.acquisition: 40 images of 16 x 16 take "
                                         r"0.000114 GiB in memory; at most 0.000114 GiB: 2 "
                                         r"satellites take them"):
        federation.build_federation(spec, clients=2, seed=0, tracks=[track, track])


def test_an_image_too_large_to_decode_is_input_error(tmp_path: Path, monkeypatch):
    """Pillow refuses images past its decompression-bomb limit with an exception that is
    not an OSError (the limit is lowered so that an 8 x 8 image exceeds it)."""
    from PIL import Image

    from orbitfl.core.errors import InputError
    from orbitfl.fl.folders import load_class_folders

    for c in range(10):
        _write_images(tmp_path / "eurosat" / f"class{c}", 1)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(InputError, match=r"^.*class0/0.png: cannot read image \(larger than "
                                         r"Pillow's limit of 20 pixels\)$"):
        load_class_folders("eurosat", tmp_path / "eurosat", 16)


def test_a_corrupt_loveda_mask_is_input_error(tmp_path: Path):
    from orbitfl.core.errors import InputError
    from orbitfl.fl.folders import load_loveda

    root = tmp_path / "loveda"
    _write_images(root / "Val" / "Rural" / "images_png", 1)
    (root / "Val" / "Rural" / "masks_png").mkdir()
    (root / "Val" / "Rural" / "masks_png" / "0.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"^.*masks_png/0.png: cannot read image "):
        load_loveda(root, 16)


@pytest.mark.parametrize("dataset", ["eurosat", "loveda"])
def test_a_dataset_folder_too_big_for_memory_is_refused_before_decoding(tmp_path: Path,
                                                                         monkeypatch, dataset):
    """Counted before any image is decoded: the files here are not even images."""
    from orbitfl.core.errors import InputError
    from orbitfl.fl import datasets
    from orbitfl.fl.folders import load_class_folders, load_loveda

    monkeypatch.setattr(datasets, "MAX_IMAGE_BYTES", 1000)
    if dataset == "eurosat":
        for c in range(10):
            (tmp_path / f"c{c}").mkdir()
            (tmp_path / f"c{c}" / "0.png").write_bytes(b"not a png")
        load = lambda: load_class_folders("eurosat", tmp_path, 16)  # noqa: E731
    else:
        for kind in ("images_png", "masks_png"):
            (tmp_path / "Train" / "Urban" / kind).mkdir(parents=True)
            (tmp_path / "Train" / "Urban" / kind / "0.png").write_bytes(b"not a png")
        load = lambda: load_loveda(tmp_path, 16)  # noqa: E731
    count = 10 if dataset == "eurosat" else 1
    with pytest.raises(InputError, match=rf"^{tmp_path}: {count} images of 16 x 16 take "
                                         r"[0-9.e-]+ GiB in memory; at most 9.31e-07 GiB"):
        load()
