"""The SAFE study's three commands end to end, as a user runs them: the driver (at settings
taken from another study, so nothing is tuned), the export of the compact tables and the
report, on two-round runs. The shipped pages are checked against their shipped data in
test_study.py; this checks that what the export ships is what the runs wrote."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from orbitfl.core.errors import InputError
from orbitfl.rundir.reader import read_table
from orbitfl.studies.safe.driver import main as driver
from orbitfl.studies.safe.export import export
from orbitfl.studies.safe.export import main as export_main
from orbitfl.studies.safe.report import write_report


def _tuned(tmp_path, methods: list[str]):
    """A study folder whose record chose lr 0.1 for ``methods`` (--settings-from), so
    that nothing is tuned."""
    source = tmp_path / "tuned"
    source.mkdir()
    chosen = {"chosen": {"fl.lr": 0.1}, "interior": {"fl.lr": True}}
    (source / "study.json").write_text(json.dumps({
        "protocol": {"tuning_seeds": [1001]},
        "tuning": {"if100": {m: chosen for m in methods}}}))
    return source


def test_driver_export_and_report_ship_what_the_runs_wrote(tmp_path):
    source = _tuned(tmp_path, ["fedavg", "safe"])
    study, data = tmp_path / "study", tmp_path / "data"
    assert driver(["--out", str(study), "--settings-from", str(source), "--only",
                   "fedavg,safe", "--networks", "ideal", "--max-seeds", "5", "--workers", "2",
                   "--set", "fl.rounds=2"]) == 0
    export(study, data)

    runs = pd.read_parquet(data / "runs.parquet")
    assert sorted(runs["method"].unique()) == ["fedavg", "safe"]
    assert (runs["status"] == "complete").all() and len(runs) == 10   # 5 seeds each
    assert set(runs["seed"]) == {1, 2, 3, 4, 5}
    curves = pd.read_parquet(data / "curves.parquet")
    for _, run in runs.iterrows():
        mine = curves[(curves["method"] == run["method"]) & (curves["seed"] == run["seed"])]
        assert list(mine["round"]) == [0, 1, 2]          # every round evaluated, in order
        # the run table's final accuracy is the last evaluated round's balanced accuracy
        assert mine["balanced_accuracy"].iloc[-1] == pytest.approx(run["final_accuracy"],
                                                                   rel=1e-12)
    diagnostics = pd.read_parquet(data / "diagnostics.parquet")
    assert set(diagnostics["method"]) == {"safe"} and diagnostics["value"].dtype == np.float32
    # the shipped diagnostics of one run are that run's own, rounded to float32 only
    folder = study / "measure" / "ideal" / "if100" / "safe"
    table = read_table(folder, "sweep.parquet")
    first = table[table["seed"] == 1].iloc[0]
    own = read_table(folder / "runs" / str(first["point"]), "safe_diagnostics.parquet")
    shipped = diagnostics[diagnostics["seed"] == 1]
    assert len(shipped) == len(own)
    np.testing.assert_array_equal(shipped["value"].to_numpy(),
                                  own["value"].to_numpy().astype(np.float32))

    page = write_report(data, tmp_path / "page.md", tmp_path / "figures")
    assert "## Verdict" in page and "SAFE - FedAvg" in page
    assert f"--settings-from {source}" in page and "--set fl.rounds=2" in page


def test_a_confirmation_on_new_seeds_measures_its_plans_count_without_fedavg(tmp_path):
    # a finding is confirmed on seeds no earlier page measured, as many as the plan's own
    # power computation fixed: no pilot, so FedAvg does not run and the page reads SAFE's
    # variant against SAFE only
    source = _tuned(tmp_path, ["safe"])
    study, data = tmp_path / "study", tmp_path / "data"
    assert driver(["--out", str(study), "--settings-from", str(source), "--only",
                   "safe,safe-ace", "--networks", "ideal", "--variants-at-safe",
                   "--first-seed", "11", "--seeds", "5", "--workers", "2",
                   "--set", "fl.rounds=2"]) == 0
    export(study, data)
    runs = pd.read_parquet(data / "runs.parquet")
    assert sorted(runs["method"].unique()) == ["safe", "safe-ace"]
    assert set(runs["seed"]) == {11, 12, 13, 14, 15}
    page = write_report(data, tmp_path / "page.md", tmp_path / "figures", declared=0.6)
    assert "- Seeds: 5, seeds 11-15, a count fixed before the runs" in page
    assert "internal pilot's" not in page
    assert "--first-seed 11 --seeds 5" in page and "--target 0.6" in page
    # two rounds reach no 60 %: the declared reading is not made, and FedAvg is not named
    assert "Not every run of SAFE reaches the declared 60 %" in page
    verdict = page.split("## Verdict")[1].split("\n## ")[0]
    assert "FedAvg" not in verdict and "Every method minus FedAvg" not in page
    # SAFE is drawn once, beside its variant: no figure of SAFE alone
    assert "-parts-bytes.png" in page and "-methods-bytes.png" not in page
    # every run read back is checked: the page names the one code that computed them all
    code = json.loads((data / "study.json").read_text())["code_sha256"]
    assert f"one orbitfl code, `{code[:12]}`" in page

    # a run folder from other code, copied in, is refused, naming both codes
    folder = study / "measure" / "ideal" / "if100" / "safe-ace" / "runs"
    manifest = sorted(folder.glob("*/manifest.json"))[0]
    original = manifest.read_text()
    manifest.write_text(original.replace(code, "0" * 64))
    with pytest.raises(InputError, match=rf"2 versions of orbitfl's code \(.*{code[:12]}.*"
                                         r"000000000000"):
        export(study, tmp_path / "refused")
    # a run of another scenario under the point's name is refused, naming the run
    recorded = json.loads(original)["scenario_sha256"]
    manifest.write_text(original.replace(recorded, "f" * 64))
    with pytest.raises(InputError, match=rf"{manifest.parent.name}: not a complete run of "
                                         "its point's scenario"):
        export(study, tmp_path / "refused")
    # a damaged run folder is one line too, with what to do about it
    manifest.write_text(original)
    rounds = manifest.parent / "rounds.parquet"
    intact = rounds.read_bytes()
    rounds.write_bytes(b"PAR1")
    with pytest.raises(InputError, match=r"rounds.parquet is not a readable parquet table .*"
                                         "delete that run's folder and rerun the driver"):
        export(study, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()          # nothing half-written
    # a folder it cannot make: one line, exit 1
    rounds.write_bytes(intact)
    (tmp_path / "a-file").write_text("")
    assert export_main([str(study), "--out", str(tmp_path / "a-file" / "d")]) == 1


def test_a_segmentation_study_is_scored_by_miou_from_tuning_to_page(tmp_path, capsys):
    """Segmentation's accuracy counts pixels (an all-background map scores 0.95 at a 5 %
    object share), so a segmentation study tunes on validation mIoU, heads on test mIoU
    (here a late mean over 2 rounds) and says so in every table it reads; its few-shot
    column is the rare classes' pixel recall, and the page names it so."""
    from orbitfl.analysis.sweep_markdown import number
    from orbitfl.studies.safe.driver import selection_score

    source = _tuned(tmp_path, ["fedavg", "safe"])
    study, data = tmp_path / "study", tmp_path / "data"
    small = ["data.task=segmentation", "model.name=seg-unet", "fl.rounds=2",
             "data.samples_per_class_max=60", "data.test_per_class=20",
             "data.validation_per_class=5", "data.ses_per_class=2", "data.min_per_client=1"]
    assert driver(["--out", str(study), "--settings-from", str(source), "--only",
                   "fedavg,safe", "--networks", "ideal", "--seeds", "5", "--workers", "2",
                   "--headline-rounds", "2", *[a for s in small for a in ("--set", s)]]) == 0
    progress = capsys.readouterr().err      # hours of sweeps say where they stand
    assert "measure fedavg at if100 on ideal links: seeds 1-5" in progress
    assert "sweep run: 5 points, 0 already done, 5 to run" in progress
    export(study, data)
    assert json.loads((data / "study.json").read_text())["protocol"]["task"] == "segmentation"
    runs, curves = (pd.read_parquet(data / f"{n}.parquet") for n in ("runs", "curves"))
    late = {}
    for _, run in runs.iterrows():
        mine = curves[(curves["method"] == run["method"]) & (curves["seed"] == run["seed"])]
        assert mine["miou"].iloc[-1] == pytest.approx(run["miou"], rel=1e-12)
        assert np.isfinite(mine["val_miou"]).all()
        assert selection_score(mine, 2, "val_miou") == pytest.approx(
            mine["val_miou"].iloc[-2:].mean())
        late.setdefault(run["method"], []).append(mine["miou"].iloc[-2:].mean())

    page = write_report(data, tmp_path / "page.md", tmp_path / "figures")
    assert ("### mIoU, pixel accuracy and few-shot pixel recall (mean ± sd [95 % "
            "t-interval])") in page
    assert "| group | n | mIoU | mIoU, late mean | accuracy |" in page
    fedavg = next(line for line in page.splitlines() if line.startswith("| FedAvg | 5 |"))
    assert f"| {number(np.mean(late['fedavg']))} ± " in fedavg   # the late mean, by hand
    assert "SAFE - FedAvg, test mIoU, mean of the last 2 rounds" in page
    assert "### mIoU at equal bytes (" in page and "| method | n | mIoU | Δ vs FedAvg" in page
    assert "by the mean validation mIoU of the last" in page
    assert "balanced test accuracy" not in page and "validation accuracy" not in page
    assert "SAFE - FedAvg, few-shot pixel recall" in page   # a class's pixels, not images
    assert "few-shot accuracy" not in page


def test_a_study_resumes_from_its_shipped_tables_on_a_machine_without_its_runs(tmp_path,
                                                                              capsys):
    """A sitting's machine may not keep the run folders of the last: the next resumes from
    the shipped tables (--carry), runs only what they lack, and ships the same tables."""
    from orbitfl.studies.safe.carry import HASH, KEYS, Carry

    flags = ["--only", "fedavg,safe", "--networks", "ideal", "--max-seeds", "5",
             "--workers", "2", "--lr-grid", "0.03,0.1,0.3", "--tuning-seeds", "1001",
             "--selection-rounds", "1", "--set", "fl.rounds=2"]
    study, data = tmp_path / "study", tmp_path / "data"
    assert driver(["--out", str(study), *flags]) == 0
    export(study, data)
    tables = {n: pd.read_parquet(data / f"{n}.parquet")
              for n in ("runs", "curves", "tuning", "diagnostics")}
    assert tables["runs"][HASH].str.fullmatch("[0-9a-f]{64}").all()
    assert len(tables["tuning"]) >= 6 and tables["tuning"][HASH].is_unique

    # the next machine has the tables only: nothing runs again, the same tables ship
    fresh, again = tmp_path / "fresh", tmp_path / "again"
    assert driver(["--out", str(fresh), "--carry", str(data), *flags]) == 0
    assert not list(fresh.glob("**/manifest.json"))
    export(fresh, again, Carry.read(data))
    for name, table in tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(again / f"{name}.parquet"), table)
    first, second = (json.loads((d / "study.json").read_text()) for d in (data, again))
    assert first["tuning"] == second["tuning"] and first["power"] == second["power"]
    assert second["carried_from"]["measured_runs"] == 10

    # tables of a sitting that stopped during one run (listed as interrupted, no curve):
    # that run alone is computed, and ships as before
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "study.json").write_text((data / "study.json").read_text())
    lacking = {n: t[~((t["method"] == "safe") & (t["seed"] == 3))] if n != "tuning" else t
               for n, t in tables.items()}
    stopped = (tables["runs"]["method"] == "safe") & (tables["runs"]["seed"] == 3)
    lacking["runs"] = tables["runs"].assign(
        status=np.where(stopped, "interrupted", tables["runs"]["status"]),
        **{HASH: tables["runs"][HASH].where(~stopped, None)})
    for name, table in lacking.items():
        table.to_parquet(partial / f"{name}.parquet")
    third = tmp_path / "third"
    assert driver(["--out", str(third), "--carry", str(partial), *flags]) == 0
    ran = list(third.glob("**/manifest.json"))
    assert [p.parent.parent.parent.name for p in ran] == ["safe"] and len(ran) == 1
    export(third, tmp_path / "third-data", Carry.read(partial))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "third-data" / "runs.parquet")
                                  .drop(columns="wall_s"),
                                  tables["runs"].drop(columns="wall_s"))

    # tables of other code, or with a damaged hash, are refused in one line, before any run
    def refused(edit, says: str) -> None:
        bad = tmp_path / "bad"
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(data, bad)
        edit(bad)
        assert driver(["--out", str(tmp_path / "never"), "--carry", str(bad), *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert says in err[-1] and not (tmp_path / "never").exists(), err

    def other_code(folder):
        record = json.loads((folder / "study.json").read_text())
        (folder / "study.json").write_text(json.dumps({**record, "code_sha256": "0" * 64}))

    def rewrite_runs(change):
        return lambda folder: change(tables["runs"].copy()).to_parquet(folder / "runs.parquet")

    def other_protocol(folder):
        record = json.loads((folder / "study.json").read_text())
        record["protocol"]["selection_rounds"] = 3
        (folder / "study.json").write_text(json.dumps(record))

    # a sitting that measured nothing yet ships its tuning alone (tables of keys only)
    tuning_only = tmp_path / "tuning-only"
    shutil.copytree(data, tuning_only)
    for name in ("runs", "curves", "diagnostics"):
        pd.DataFrame(columns=KEYS).to_parquet(tuning_only / f"{name}.parquet")
    carried = Carry.read(tuning_only)
    assert len(carried.scores) == len(tables["tuning"]) == len(carried.rows)
    assert not carried.curves and not carried.diagnostics

    refused(other_code, "computed by orbitfl code 000000000000")
    refused(other_protocol, "scores over the last 3 rounds, this study's classification "
                            "scores over the last 1")
    other = tmp_path / "other-protocol"   # the export refuses them too, before writing
    shutil.copytree(data, other)
    other_protocol(other)
    with pytest.raises(InputError, match="scores over the last 3 rounds"):
        export(fresh, tmp_path / "never", Carry.read(other))
    assert not (tmp_path / "never").exists()
    refused(rewrite_runs(lambda t: t.assign(**{HASH: "not-a-hash"})), "is not a SHA-256")
    refused(rewrite_runs(lambda t: t.assign(**{HASH: t[HASH].iloc[0]})), "shipped twice")
    refused(rewrite_runs(lambda t: t.drop(columns=HASH)), f"no {HASH} column")
