"""Federated missions over the network: causality, battery gating, quorum and deadline,
async staleness in simulated time, byte bookkeeping, shipped scenarios, and the report."""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_end_to_end import TINY

from orbitfl.cli import main
from orbitfl.engine.prepare import prepare
from orbitfl.sweeps.runner import plan_points

from conftest import SCENARIOS

SAFE_TINY = {**TINY, "name": "tiny-safe",
             "fl": {**TINY["fl"], "strategy": "safe", "rounds": 4,
                    "safe": {"ace_dim": 16},
                    "compression": {"to_satellites": "fp16", "to_ground": "int8"},
                    "schedule": {"deadline": "2h", "min_clients": 2}},
             "onboard": {"compute": "myriad-x",
                         # A small battery that loses charge over each orbit: training
                         # has to wait for sunlight now and then. (16 W: at 12 W the 8 W
                         # bus alone outdraws the Sun over an orbit and every pass finds
                         # the satellite browned out.)
                         "power": {"battery_wh": 5, "initial_soc": 0.5, "solar_w": 16,
                                   "idle_w": 8, "train_threshold_soc": 0.4}}}
ASYNC_TINY = {**TINY, "name": "tiny-async",
              "fl": {**TINY["fl"], "strategy": "fedbuff", "rounds": 4,
                     "fedbuff": {"buffer_size": 2},
                     "schedule": {"mode": "async", "deadline": "6h"}}}


def _run(base: Path, scenario: dict) -> Path:
    path = base / f"{scenario['name']}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = base / scenario["name"]
    assert main(["run", str(path), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("missions")
    return {"safe": _run(base, SAFE_TINY), "async": _run(base, ASYNC_TINY)}


def _tables(run: Path):
    return {name: pd.read_parquet(run / f"{name}.parquet")
            for name in ("rounds", "clients", "transfers", "events")}


@pytest.mark.parametrize("which", ["safe", "async"])
def test_no_payload_is_used_before_its_transfer_completed(runs, which):
    t = _tables(runs[which])
    transfers, clients, rounds = t["transfers"], t["clients"], t["rounds"]
    for entry in clients.itertuples():
        mine = transfers[transfers.job == entry.job]
        ups = mine[mine.src == "ground"]
        if entry.payload_received_s is not None and not np.isnan(entry.payload_received_s):
            assert (ups.end_s <= entry.payload_received_s + 1e-9).all()
        downs = mine[mine.dst == "ground"]
        if entry.aggregated:
            assert downs.status.eq("delivered").all()
            assert entry.update_delivered_s >= downs.end_s.max() - 1e-9
    if which == "safe":
        for r in rounds.itertuples():
            used = clients[(clients["round"] == r.round) & clients.aggregated]
            assert (used.update_delivered_s <= r.sim_time_s + 1e-9).all()
            assert set(used.client) == set(r.clients)


def test_clients_never_train_below_the_battery_threshold(runs):
    events = _tables(runs["safe"])["events"]
    starts = events[events.kind.isin(["training_start", "training_resume"])]
    assert len(starts) > 0
    assert (starts.value >= 0.4 - 1e-9).all()
    assert (events.kind == "training_wait_battery").any()  # the small battery did bind


@pytest.mark.parametrize("which", ["safe", "async"])
def test_energy_books_balance_over_the_whole_mission(runs, which):
    """Every satellite, every sample: supplied = initial + harvested - stored - wasted;
    no training or radio energy is supplied while the charge is below the floor; the
    rounds' energy is what the batteries supplied to training and radios."""
    power = pd.read_parquet(runs[which] / "power.parquet")
    spec = {"battery_wh": 80.0, "initial_soc": 0.9, "floor_soc": 0.15,
            **json.loads((runs[which] / "manifest.json").read_text())["scenario"]["onboard"]
            .get("power", {})}
    capacity = spec["battery_wh"] * 3600.0
    stored = power.soc * capacity
    np.testing.assert_allclose(power.supplied_j, spec["initial_soc"] * capacity
                               + power.harvested_j - stored - power.wasted_j,
                               rtol=0, atol=1e-6 * capacity)
    assert power.soc.between(0.0, 1.0).all()
    rounds = pd.read_parquet(runs[which] / "rounds.parquet")
    supplied = np.zeros(len(rounds))
    for _, trace in power.groupby("satellite"):
        low = (trace.soc < spec["floor_soc"] - 1e-9).to_numpy()
        below = low[1:] & low[:-1]          # whole span below the floor (soc is linear)
        assert np.diff(trace.mission_j.to_numpy())[below] == pytest.approx(0.0, abs=1e-9)
        supplied += np.interp(rounds.sim_time_s, trace.t_s, trace.mission_j)
    np.testing.assert_allclose(rounds.energy_j, supplied, rtol=1e-9)
    if which == "safe":  # the small battery did run low, and the books still balance
        assert (power.unserved_j > 0).any() or (power.soc < spec["floor_soc"]).any()


def test_sync_rounds_respect_quorum_and_deadline(runs):
    rounds = _tables(runs["safe"])["rounds"].iloc[1:]
    for r in rounds.itertuples():
        quorum = min(2, r.selected)
        at_deadline = abs(r.sim_time_s - (r.opened_s + 7200.0)) < 1e-6
        assert r.received <= r.selected
        assert r.received >= quorum or at_deadline
        assert r.sim_time_s <= r.opened_s + 7200.0 + 1e-6


def test_async_staleness_is_measured_in_simulated_time(runs):
    t = _tables(runs["async"])
    clients, rounds = t["clients"], t["rounds"]
    published = dict(zip(rounds["round"], rounds.sim_time_s))  # version v after aggregation v
    done = clients[clients.update_delivered_s.notna()]
    assert len(done) >= 8
    for entry in done.itertuples():
        expected = entry.update_delivered_s - published[entry.base_version]
        assert entry.staleness_s == pytest.approx(expected)
        assert entry.staleness_s > 0
    assert rounds.iloc[1:].mean_staleness_s.gt(0).all()


@pytest.mark.parametrize("which", ["safe", "async"])
def test_round_byte_totals_equal_the_transfer_sums(runs, which):
    t = _tables(runs[which])
    rounds, transfers = t["rounds"], t["transfers"]
    delivered = transfers[transfers.status == "delivered"]
    for r in rounds.itertuples():
        done = delivered[delivered.end_s <= r.sim_time_s]
        assert r.bytes_up == done[done.src == "ground"].bytes.sum()
        assert r.bytes_down == done[done.dst == "ground"].bytes.sum()
        by_kind = sum(getattr(r, c) for c in rounds.columns if c.startswith("bytes_up_"))
        assert by_kind == r.bytes_up
    last = rounds.iloc[-1]
    if which == "safe":  # fp16 to satellites, int8 to ground: less on the wire than raw
        assert last.bytes_up_weights < last.raw_bytes_up_weights
        assert last.bytes_down_weights < last.raw_bytes_down_weights
        assert last.bytes_up_ses_images > 0 and last.bytes_up_feature_map > 0
        assert last.bytes_up_class_weights > 0 and last.bytes_down_embedding > 0


def test_every_shipped_scenario_validates():
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert {f.stem for f in files} >= {"quickstart", "flock-safe", "flock-fedavg",
                                       "starlink-relay", "bandwidth-base", "imbalance-base",
                                       "iridium-polar", "segmentation-flock"}
    for path in files:
        prepared = prepare(path)
        assert prepared.fleet and prepared.stations
    readme = (SCENARIOS / "README.md").read_text()
    assert all(f.name in readme for f in files)


def test_every_shipped_sweep_expands_to_valid_scenarios(tmp_path):
    sweeps = sorted((SCENARIOS / "sweeps").glob("*.yaml"))
    assert [f.stem for f in sweeps] == ["bandwidth", "imbalance", "planner-stations",
                                        "safe-study"]
    sizes = {f.stem: len(plan_points(f, tmp_path / f.stem)[0]) for f in sweeps}
    assert sizes == {"bandwidth": 12, "imbalance": 18, "planner-stations": 25,
                     "safe-study": 5}
    readme = (SCENARIOS / "README.md").read_text()
    assert all(f"sweeps/{f.name}" in readme for f in sweeps)


def _chromium() -> str:
    """The browser, or a visible skip on a machine without one; CI (CI=true) installs
    Chromium, so there a missing browser fails the test instead of hiding it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser:
        return browser
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but no chromium on PATH: .ci/run should have installed it")
    pytest.skip("no chromium on PATH: the dashboard was not rendered in a browser "
                "(install Debian's chromium, or let CI run it)")


def test_report_and_dashboard_render_in_headless_chromium(runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(runs["safe"]), str(runs["async"]), "--out", str(out)]) == 0
    for name in ("accuracy_vs_bytes", "accuracy_vs_time", "few_shot_accuracy", "bytes_by_kind",
                 "contact_gantt", "ground_tracks", "battery", "per_class_accuracy"):
        assert (out / f"{name}.png").stat().st_size > 5_000, name
    page = (out / "dashboard.html").read_text()
    assert "<script src=" not in page and "<script" in page and len(page) > 1_000_000
    manifest = json.loads((runs["safe"] / "manifest.json").read_text())
    assert manifest["summary"]["rounds_completed"] == 3  # no pass before round 1's deadline
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=8000"]
    url = (out / "dashboard.html").as_uri()
    size = (1400, 6000)  # tall enough for every plot and the CSV links: no scrolling
    dom = subprocess.run([browser, *flags, f"--window-size={size[0]},{size[1]}", "--dump-dom",
                          url], capture_output=True, text=True, timeout=120, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-errors=""' in body, body  # the page records console errors there
    assert 'data-drawn="12"' in body  # every view was drawn
    boxes = dict(re.findall(r'<div class="plot[^"]*" id="(\w+)"[^>]*data-box="([\d,]+)"', dom))
    assert len(boxes) == 12, boxes
    shot = tmp_path / "dashboard.png"
    subprocess.run([browser, *flags, f"--window-size={size[0]},{size[1]}",
                    f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    from PIL import Image
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    for name, box in boxes.items():  # each plot area drew something, not a blank box
        left, top, width, height = map(int, box.split(","))
        assert top + height <= pixels.shape[0], name
        assert pixels[top:top + height, left:left + width].std() > 10, name
    legend = " ".join(part.split(">", 1)[1].split("<", 1)[0]
                      for part in dom.split('class="legendtext"')[1:])
    assert "tiny-safe" in legend and "tiny-async" in legend


@pytest.mark.parametrize("which", ["safe", "async"])
def test_exactly_the_updates_taken_in_are_marked_aggregated(runs, which):
    """Aggregated client jobs are the ones each round took in, matched by job: in async
    mode two jobs of one client can share a round number (an undelivered one was marked)."""
    t = _tables(runs[which])
    clients, rounds = t["clients"], t["rounds"]
    assert int(clients.aggregated.sum()) == int(rounds["received"].iloc[1:].sum())
    assert (clients.loc[clients.aggregated, "update_delivered_s"].notna()).all()


# -- analytic missions on hand-made contact plans ------------------------------------------
# Two satellites, one station each, 1000 B/s both ways, no backhaul; a 12-input linear
# model: its weights payload is 64 + (16 + 8 + 96) + (16 + 4 + 8) = 212 B and the version
# payload 64 + 16 + 8 = 88 B, so a broadcast takes 0.3 s and an upload 0.212 s; training
# takes 1e10 FLOPs / 1e9 FLOP/s = 10 s on an always-sunlit, never-gated battery.
def _analytic_mission(executor=None, min_clients=2):
    import torch
    from test_network import NO_BACKHAUL, make_network

    from orbitfl.constellation.compute import ChipProfile
    from orbitfl.constellation.events import EventLog
    from orbitfl.constellation.onboard import Onboard
    from orbitfl.constellation.power import Battery, PowerSpec
    from orbitfl.core.random_streams import RandomStreams
    from orbitfl.engine.learning import Learning
    from orbitfl.engine.mission import Evaluator, Mission, Schedule
    from orbitfl.fl.datasets import ImageSet
    from orbitfl.fl.fedavg import FedAvg
    from orbitfl.fl.strategy import FLConfig

    horizon = 20_000.0
    windows = [(0, "a", 100.0, 1000.0), (1, "b", 5000.0, 6000.0), (0, "a", 4000.0, 4015.0)]
    env, network = make_network(windows, satellites=2, stations=(("a", 1), ("b", 1)),
                                backhaul=NO_BACKHAUL)
    chip = ChipProfile("test", 1e9, 1.0, 0.0, "hand-made")
    spec = PowerSpec(battery_wh=1000.0, initial_soc=1.0, idle_w=0.0, transmit_w=0.0,
                     receive_w=0.0)
    batteries = [Battery(spec, np.array([0.0]), np.array([horizon]), horizon)
                 for _ in range(2)]
    onboard = Onboard(chip, batteries, ["sat0", "sat1"], EventLog())
    gen = torch.Generator().manual_seed(0)
    clients = [ImageSet(torch.randn(16, 3, 2, 2, generator=gen),
                        torch.randint(0, 2, (16,), generator=gen)) for _ in range(2)]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    strategy = FedAvg(model, FLConfig(rounds=3, seed=1))
    schedule = Schedule(rounds=3, deadline_s=3000.0, min_clients=min_clients,
                        horizon_s=horizon)
    learning = Learning(strategy, clients, executor(strategy, clients) if executor else None,
                        flops=[1e10, 1e10])
    evaluator = Evaluator(clients[0], None, clients, 2, np.array([16, 16]), strategy)
    mission = Mission(env, network, onboard, learning, evaluator, schedule, RandomStreams(0))
    return mission, strategy


def test_a_round_closes_at_its_deadline_and_a_straggler_arrives_late():
    mission, _ = _analytic_mission()
    rounds = mission.run()
    first, second, third = rounds[1:]
    # sat0: broadcast 100 -> 100.3, trains to 110.3, uploads by 110.512; sat1 has no pass
    # before 5000, so the quorum of 2 is never met and round 1 closes at its deadline.
    assert (first.opened_s, first.closed_s, first.received, first.clients) == \
        (0.0, 3000.0, 1, [0])
    jobs = {(c.round, c.client): c for c in mission.client_rounds}
    fast, straggler = jobs[1, 0], jobs[1, 1]
    assert fast.payload_received_s == pytest.approx(100.3)
    assert fast.update_delivered_s == pytest.approx(110.512)
    assert fast.aggregated and fast.late is False
    # The straggler trains after its pass at 5000 and delivers too late for round 1.
    assert straggler.payload_received_s == pytest.approx(5000.3)
    assert straggler.update_delivered_s == pytest.approx(5010.512)
    assert straggler.late is True and not straggler.aggregated
    # Round 2 opens at 3000 with the only idle client (sat1 is still out), so its quorum
    # is 1 and it closes when sat0's update lands after its 4000 s pass.
    assert (second.opened_s, second.selected, second.clients) == (3000.0, 1, [0])
    assert second.closed_s == pytest.approx(4010.512)
    # Round 3 asks sat0 again; its pass ends at 4015, before its upload (4020.8):
    # the round closes empty at its deadline.
    assert (third.selected, third.received) == (1, 0)
    assert third.closed_s == pytest.approx(4010.512 + 3000.0)


def test_the_timeline_does_not_wait_for_training_and_pools_agree():
    """Payload sizes are known before training ends, so the timeline is the same whoever
    trains; the global models after the mission are bit-identical."""
    import torch

    from orbitfl.fl.executors import LocalExecutor, SerialExecutor

    serial, a = _analytic_mission(lambda s, c: SerialExecutor(s, c))
    pooled, b = _analytic_mission(lambda s, c: LocalExecutor(s, c, workers=2))
    times = [[(r.opened_s, r.closed_s, r.clients) for r in m.run()] for m in (serial, pooled)]
    assert times[0] == times[1]
    for key, value in a.global_model.state_dict().items():
        assert torch.equal(value, b.global_model.state_dict()[key]), key
    assert a.version == b.version == 2   # the third round took nothing in


def test_a_segmentation_run_is_scored_and_stopped_by_its_miou(tmp_path, capsys):
    """Segmentation's accuracy counts pixels, most of them background: the command's
    summary and the manifest carry the mIoU of the first and last round beside it, the
    target reads mIoU (pixel accuracy passed 0.5 at round 1 and stopped the run there),
    and the report draws a mIoU panel with the targets on it."""
    from orbitfl.analysis.report import VIEWS
    from orbitfl.analysis.run_model import load_run
    from orbitfl.analysis.styled import styled

    out = tmp_path / "run"
    assert main(["run", str(SCENARIOS / "segmentation-flock.yaml"), "--set", "fl.rounds=2",
                 "--set", "fl.schedule.target_accuracy=0.5", "--out", str(out)]) == 0
    rounds = pd.read_parquet(out / "rounds.parquet")
    assert rounds["accuracy"].iloc[1] >= 0.5 > rounds["miou"].max()   # the old trap
    first, last = rounds["miou"].iloc[0], rounds["miou"].iloc[-1]
    printed = capsys.readouterr().out
    assert f"mIoU (initial -> final)      {first:.3f} -> {last:.3f}" in printed
    assert "uncertainty                  one seed, no interval: replicates in `orbitfl " \
        "sweep` give one" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    summary = manifest["summary"]
    assert (summary["initial_miou"], summary["final_miou"]) == (first, last)
    assert summary["rounds_completed"] == 2 and manifest["time_to_target_metric"] == "miou"
    assert all(hit is None for hit in manifest["time_to_target"].values())
    figure = VIEWS["accuracy_vs_bytes"](styled([load_run(out)]))
    assert [ax.get_ylabel() for ax in figure.axes if ax.get_visible()][-1] == "test mIoU (%)"
    few_shot = VIEWS["few_shot_accuracy"](styled([load_run(out)]))
    assert "test mIoU (%)" not in [ax.get_ylabel() for ax in few_shot.axes]
