"""The run directory's one declaration: every table's columns (name or pattern, type, unit,
meaning) and the manifest's keys.

The writer checks each table against it (``check_columns``, called by
``rundir.write_table``, and the reader's type checks, ``reader.check_table``), so a column
added without documentation fails loudly, and ``docs/run-directory.md`` is generated from
it::

    python -m orbitfl.rundir.columns --write docs/run-directory.md

Standard library only: the writer, the CLI and the documentation test import it cheaply.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from orbitfl.core.docgen import generator_main, table_cell

DOC = Path("docs/run-directory.md")
REGENERATE = f"python -m orbitfl.rundir.columns --write {DOC}"

# What each <placeholder> of a column pattern stands for: (regular expression, meaning).
PLACEHOLDERS = {
    "dir": ("up|down", "`up` (ground to satellites) or `down` (satellites to ground)"),
    "kind": ("[a-z_]+", "a payload kind that was delivered in the run (`weights`, `delta`, "
             "`feature_map`, `embedding`, `class_weights`, `ses_images`, `control`)"),
    "k": ("[0-9]+", "a class index, 0 to classes - 1"),
    "acc": ("[0-9.]+", "an accuracy threshold: 0.5, 0.6, 0.7, 0.8 or 0.9"),
    "parameter": ("[^\0]+", "a swept YAML path, such as `fl.strategy`"),
}
_PLACEHOLDER = re.compile(r"<(\w+)>")


@dataclass(frozen=True)
class Column:
    """One column (or, with ``<placeholders>`` in its name, a family of columns)."""

    name: str
    dtype: str
    unit: str
    meaning: str

    @property
    def is_pattern(self) -> bool:
        return bool(_PLACEHOLDER.search(self.name))


@dataclass(frozen=True)
class Table:
    """A file of the run (or sweep) directory. Adjacent pattern columns form a group that
    repeats as a unit, once per value of its placeholders, in the position declared."""

    file: str
    about: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, dtype: str, unit: str, meaning: str) -> Column:
    return Column(name, dtype, unit, meaning)


_ACCURACY = ("fraction of test images classified correctly (segmentation: of test pixels, "
             "background included)")
# segmentation scores a class by the share of its pixels predicted as it
_SHOT = " (segmentation: the pixel recall of those classes)"

TABLES: dict[str, Table] = {t.file: t for t in (
    Table("contacts.parquet", "One row per contact window of a satellite over a ground "
          "station (before faults; faults shorten or drop windows in the network).", (
              _c("satellite", "str", "", "satellite name"),
              _c("norad_id", "int", "", "NORAD catalog number"),
              _c("station", "str", "", "ground station id"),
              _c("start", "datetime (UTC)", "", "window start, UTC"),
              _c("end", "datetime (UTC)", "", "window end, UTC"),
              _c("start_s", "float", "s", "window start, simulated seconds since the epoch"),
              _c("end_s", "float", "s", "window end, simulated seconds since the epoch"),
              _c("duration_s", "float", "s", "end_s - start_s"),
              _c("max_elevation_deg", "float", "deg", "peak elevation seen from the station"),
              _c("max_elevation_s", "float", "s", "time of the peak elevation"),
              _c("station_lat_deg", "float", "deg", "station geodetic latitude"),
              _c("station_lon_deg", "float", "deg", "station longitude"),
              _c("station_alt_m", "float", "m", "station altitude"),
              _c("min_elevation_deg", "float", "deg", "station elevation mask"),
              _c("downlink_bytes", "float", "bytes",
                 "what the downlink could carry over the whole window"),
              _c("uplink_bytes", "float", "bytes",
                 "what the uplink could carry over the whole window"))),
    Table("transfers.parquet", "One row per transfer; a relayed payload has one row per hop. "
          "air_bytes = delivered_bytes + lost_bytes + in_flight_bytes.", (
              _c("transfer_id", "int", "", "index of the transfer in the network's log"),
              _c("kind", "str", "", "payload kind (see `<kind>` below)"),
              _c("bytes", "int", "bytes", "payload size on the wire (after compression)"),
              _c("src", "str", "", "sending node: a satellite name or `ground`"),
              _c("dst", "str", "", "receiving node: a satellite name or `ground`"),
              _c("requested_s", "float", "s", "simulated time the transfer was queued"),
              _c("start_s", "float or null", "s", "first byte on the air (null: never sent)"),
              _c("end_s", "float or null", "s", "last byte delivered (null: not delivered)"),
              _c("passes_used", "int", "", "contact windows (or ISL windows) it used"),
              _c("bytes_per_pass", "list of float", "bytes", "bytes sent in each of them"),
              _c("via", "list of str", "", "the station (or peer) of each of them"),
              _c("antenna_per_pass", "list of int", "",
                 "which antenna of that station tracked it, from 0 (-1: an ISL hop)"),
              _c("band_per_pass", "list of str", "",
                 "band of the link that served it (`''`: a bare rate or an ISL hop)"),
              _c("atmosphere_db_per_pass", "list of float", "dB",
                 "atmospheric loss the link budget subtracted in each of them, time-weighted "
                 "over the bytes' airtime: ITU-R rain + cloud + gas with `links.weather`, else "
                 "the band's clear-sky estimate (NaN: ISL hop or fixed-rate link)"),
              _c("es_n0_db_per_pass", "list of float", "dB",
                 "Es/N0 in each of them, time-weighted over the airtime (NaN as above)"),
              _c("modcod_per_pass", "list of str", "",
                 "the DVB-S2 MODCOD that carried most of each pass's bytes (`none`: no MODCOD "
                 "closed; empty: ISL hop or fixed-rate link)"),
              _c("status", "str", "", "`waiting`, `sending` or `delivered` at the end"),
              _c("air_bytes", "float", "bytes", "everything put on the air, resends included"),
              _c("retransmitted_bytes", "float", "bytes",
                 "progress discarded at a pass end (restart policy) plus packets resent"),
              _c("delivered_bytes", "int", "bytes", "`bytes` if delivered, else 0"),
              _c("lost_bytes", "float", "bytes",
                 "retransmitted bytes plus partial progress of a failed satellite's transfer"),
              _c("in_flight_bytes", "float", "bytes", "partial progress still valid at the end"),
              _c("raw_bytes", "int", "bytes", "payload size before compression"),
              _c("round", "int or null", "", "the round (async: aggregation) it belongs to"),
              _c("client", "int or null", "", "the client (satellite index) it belongs to"),
              _c("job", "int or null", "", "the client job (`clients.parquet` job)"),
              _c("hop", "int or null", "", "hop index along the route (0: first)"),
              _c("route", "str or null", "", "the whole route, nodes joined by `->`"),
              _c("late", "bool or null", "",
                 "an update that reached the ground after its round closed (null: uplinks)"))),
    Table("rounds.parquet", "One row per round (async: per aggregation), round 0 being the "
          "initial model. Accuracies are NaN in rounds that were not evaluated.", (
              _c("round", "int", "", "round number (0: initial model)"),
              _c("opened_s", "float", "s", "simulated time the round opened"),
              _c("sim_time_s", "float", "s", "simulated time the round closed"),
              _c("selected", "int", "", "clients selected"),
              _c("received", "int", "", "updates aggregated"),
              _c("accuracy", "float", "fraction", _ACCURACY),
              _c("balanced_accuracy", "float", "fraction", "mean of the per-class accuracies"),
              _c("many_shot_accuracy", "float", "fraction",
                 "accuracy on the classes with the most training images" + _SHOT),
              _c("medium_shot_accuracy", "float", "fraction",
                 "accuracy on the middle classes by training images" + _SHOT),
              _c("few_shot_accuracy", "float", "fraction",
                 "accuracy on the classes with the fewest training images" + _SHOT),
              _c("personalised_accuracy", "float", "fraction",
                 "clients' personalised models on the balanced test set"),
              _c("personalised_own_mix_accuracy", "float", "fraction",
                 "clients' personalised models weighted to each client's own class mix"),
              _c("global_own_mix_accuracy", "float", "fraction",
                 "the global model weighted to each client's own class mix, mean over clients "
                 "(beside the personalised own-mix: the same distribution)"),
              _c("val_accuracy", "float", "fraction", "accuracy on the validation set: balanced "
                 "(data.validation_per_class) or held out of the clients' training data "
                 "(data.validation_fraction); NaN without either"),
              _c("val_balanced_accuracy", "float", "fraction",
                 "mean of the per-class accuracies on that validation set"),
              _c("miou", "float", "fraction", "mean intersection over union (segmentation)"),
              _c("val_miou", "float", "fraction", "mIoU on the validation set "
                 "(segmentation; NaN otherwise): what a segmentation study tunes on"),
              _c("per_class_accuracy", "list of float", "fraction",
                 "accuracy of each class, by class index (segmentation: its pixel recall)"),
              _c("clients", "list of int", "", "clients whose updates were aggregated"),
              _c("mean_staleness_s", "float", "s",
                 "async: mean time from an update's base model to its arrival"),
              _c("energy_j", "float", "J", "cumulative training and radio energy"),
              _c("bytes_up", "int", "bytes", "cumulative wire bytes delivered to satellites"),
              _c("bytes_down", "int", "bytes", "cumulative wire bytes delivered to the ground"),
              _c("bytes_<dir>_<kind>", "int", "bytes",
                 "cumulative wire bytes of one payload kind delivered in one direction "
                 "(ground hops only: a relayed payload counts once)"),
              _c("raw_bytes_<dir>_<kind>", "int", "bytes",
                 "the same before compression"))),
    Table("clients.parquet", "One row per client job: a client's part in one round (sync) "
          "or one job (async).", (
              _c("round", "int", "", "round (async: aggregation) the job started in"),
              _c("client", "int", "", "client index"),
              _c("satellite", "str", "", "satellite name"),
              _c("selected_s", "float", "s", "simulated time the job started"),
              _c("job", "int", "", "job id, unique in the run"),
              _c("base_version", "int", "", "global model version the job started from"),
              _c("payload_received_s", "float or null", "s",
                 "when everything sent to the client had arrived"),
              _c("training_s", "float or null", "s", "simulated onboard compute time"),
              _c("training_energy_j", "float or null", "J", "energy of the training"),
              _c("soc_at_training", "float or null", "fraction",
                 "battery state of charge when training was due"),
              _c("update_delivered_s", "float or null", "s", "when the update reached ground"),
              _c("uplink_bytes", "int", "bytes", "wire bytes that reached the satellite"),
              _c("downlink_bytes", "int", "bytes", "wire bytes it sent back"),
              _c("late", "bool or null", "", "the update arrived after its round closed"),
              _c("aggregated", "bool", "", "the update was taken into an aggregation"),
              _c("staleness_versions", "int or null", "",
                 "global versions published between base and arrival"),
              _c("staleness_s", "float or null", "s",
                 "simulated time from the base model's publication to arrival"))),
    Table("partition.parquet", "Each satellite's training-set class histogram.", (
        _c("satellite", "str", "", "satellite name"),
        _c("class_<k>", "int", "images", "training images of class k on that satellite"))),
    Table("power.parquet", "Battery state of every satellite at every change of slope (load, "
          "sunlight, empty, full), with cumulative energy books: supplied = initial + "
          "harvested - stored - wasted.", (
              _c("satellite", "str", "", "satellite name"),
              _c("t_s", "float", "s", "simulated time"),
              _c("soc", "float", "fraction", "battery state of charge"),
              _c("harvested_j", "float", "J", "solar output while in sunlight, cumulative"),
              _c("wasted_j", "float", "J", "solar output a full battery could not take"),
              _c("supplied_j", "float", "J", "energy delivered to all loads, cumulative"),
              _c("mission_j", "float", "J", "of which to training and radios (not the bus)"),
              _c("unserved_j", "float", "J", "demand an empty battery could not meet"))),
    Table("events.parquet", "The event log, in time order: contacts, transfer steps, training, "
          "battery crossings, brown-outs, radios waiting for charge, decays and faults.", (
              _c("t_s", "float", "s", "simulated time"),
              _c("kind", "str", "", "event kind, such as `contact_start` or `decayed`"),
              _c("node", "str", "", "satellite, station or `ground`"),
              _c("detail", "str", "", "free text: the station, the transfer, the reason"),
              _c("value", "float or null", "", "a number some kinds carry"))),
    Table("tracks.parquet", "Sub-satellite points of the first 30 satellites over at most 12 h, "
          "every 60 s (for the maps; none after a decay).", (
              _c("satellite", "str", "", "satellite name"),
              _c("t_s", "float", "s", "simulated time"),
              _c("lat_deg", "float", "deg", "geodetic latitude"),
              _c("lon_deg", "float", "deg", "longitude"))),
    Table("stations.parquet", "The ground stations of the scenario.", (
        _c("id", "str", "", "station id"),
        _c("name", "str", "", "station name"),
        _c("lat_deg", "float", "deg", "geodetic latitude"),
        _c("lon_deg", "float", "deg", "longitude"),
        _c("alt_m", "float", "m", "altitude"),
        _c("min_elevation_deg", "float", "deg", "elevation mask"),
        _c("antennas", "int", "", "antennas (simultaneous contacts)"),
        _c("bands", "str", "", "bands its antennas serve, `/`-joined (empty: not published)"))),
    Table("safe_diagnostics.parquet", "SAFE runs only: one row per quantity at every "
          "evaluation (long form; docs/safe-method.md, Failure signatures).", (
              _c("round", "int", "", "the evaluated round (ACE, CRO), or the round the "
                 "client's fit ran in (FAU: every fit taken in since the last evaluation)"),
              _c("client", "int or null", "", "client index (FAU); null: the server's"),
              _c("quantity", "str", "", "`ace_foreground` (mean evaluation mask of the global "
                 "model on the SES), `ace_foreground_hard` (share of positions with foreground "
                 "probability > 1/2), `ace_foreground_sd` (its spread over positions); on data "
                 "whose generator knows the objects (`geo-synthetic-objects`): "
                 "`ace_foreground_objects` and `ace_foreground_background` (mean mask on the "
                 "cells of the objects and on cells without object pixels), `ace_object_auc` "
                 "(probability an object cell scores above a background cell; 0.5: blind), "
                 "`cro_weight` (class weight clients train with next), `fau_divergence` "
                 "(1 - CKA), `fau_mu` (the EMA weight of the client's own model)"),
              _c("index", "int or null", "", "class index (`cro_weight`); null otherwise"),
              _c("value", "float", "", "the quantity's value (NaN: divergence of fixed mu)"))),
    Table("manifest.json", "The run's record (JSON; keys sorted when written).", (
        _c("class_names", "list of str", "", "the data set's class names, by class index"),
        _c("code_sha256", "str", "", "SHA-256 of orbitfl's Python sources that computed the "
           "run (`orbitfl.core.code_identity`): a sweep reuses a finished point, and a run resumes "
           "from a checkpoint, only when it and `scenario_sha256` both match"),
        _c("final_val_accuracy", "float or null", "fraction",
           "last round's validation accuracy (null: no validation set)"),
        _c("final_val_balanced_accuracy", "float or null", "fraction",
           "last round's balanced validation accuracy (null: no validation set)"),
        _c("finished_utc", "str", "", "when the run finished, ISO 8601 UTC"),
        _c("orbitfl_version", "str", "", "orbitfl's version"),
        _c("packages", "object", "", "versions of numpy, pandas, torch, sgp4, skyfield, "
           "simpy, pydantic (null: not installed)"),
        _c("plugins", "object", "", "per YAML path of an extension that is not built in "
           "(fl.strategy, model, data): its `name`, `version` and, for a strategy whose "
           "options name more code (the Flower adapter), `uses` (flwr's version and those of "
           "the Flower strategy and client); empty: none"),
        _c("python", "str", "", "Python version"),
        _c("satellites", "list of object", "", "the fleet: `name` and `norad_id` of each"),
        _c("scenario", "object", "", "the validated scenario, defaults filled in"),
        _c("scenario_file", "str or null", "",
           "absolute path of the scenario file (null: a scenario built in Python)"),
        _c("scenario_sha256", "str", "", "SHA-256 of the validated scenario"),
        _c("seed", "int", "", "the scenario seed (drives everything)"),
        _c("status", "str", "", "`complete`"),
        _c("summary", "object", "", "headline results: run_dir, satellites, contacts, "
           "rounds_completed, rounds_planned, sim_time_s, final_accuracy, "
           "initial_accuracy, bytes_up, bytes_down, air_bytes; wall_time_s (s: the whole "
           "run, report included, every process of a resumed run up to its checkpoint "
           "counted) and the last process's parts prepare_s (scenario, contacts, data), "
           "mission_s (rounds, training, evaluation) and report_s (figures, dashboard); "
           "resumed_after_round (the checkpoint's round; null: the run ran in one process "
           "or was written before the key existed); initial_miou and final_miou "
           "(segmentation, whose accuracy counts pixels; null otherwise)"),
        _c("time_to_target", "object", "", "per threshold `<acc>`: the first round whose "
           "`time_to_target_metric` reaches it (round, sim_time_s, wall_time_s, bytes_up, "
           "bytes_down, energy_j), or null"),
        _c("time_to_target_metric", "str", "", "the rounds column the targets (and "
           "fl.schedule.target_accuracy) read: `accuracy`, or `miou` for segmentation, "
           "whose pixel accuracy the background sets (absent: written before the key, "
           "`accuracy`)"),
        _c("tle_sha256", "str or null", "", "SHA-256 of the element file (null: Walker)"),
        _c("train_class_counts", "list of int", "images", "training images per class"),
        _c("train_imbalance_factor", "float or null", "",
           "largest / smallest class count (null: a class has no image)"),
        _c("validation_images", "int", "images",
           "images of the validation set (balanced, or held out of the clients' training "
           "data)"))),
    Table("sweep.parquet", "In the sweep directory: one row per point (one run: with "
          "`replicates:` or `seeds:`, one per replicate of each group of swept values), its "
          "swept values and headline results (null where a point did not complete).", (
              _c("group", "str", "", "the group of runs that differ only in their seed: "
                 "its swept values but `seed`, as `path=value, ...` (`base` when only the "
                 "seed is swept)"),
              _c("replicate", "int", "", "the run's index within its group, 0 to n - 1 "
                 "(paired comparisons pair runs of equal index)"),
              _c("seed", "int or null", "", "the run's scenario seed (replicate 0 keeps the "
                 "point's seed; null: a swept seed that is not an integer)"),
              _c("point", "str", "", "point name, `<name>-<ii>` or `<name>-<ii>-r<k>` with "
                 "replicates (its scenario is `points/<point>.json`, its run `runs/<point>`)"),
              _c("<parameter>", "as swept", "", "the point's value at that YAML path "
                 "(mappings and lists as one line of YAML; mixed kinds as text); a swept "
                 "`seed` is the `seed` column"),
              _c("status", "str", "", "`complete`, `failed`, `invalid` or `interrupted`"),
              _c("error", "str or null", "", "why the point did not complete"),
              _c("wall_s", "float", "s", "wall time of the point"),
              _c("final_accuracy", "float or null", "fraction",
                 "last round's accuracy (segmentation: pixel accuracy)"),
              _c("balanced_accuracy", "float or null", "fraction",
                 "last round's balanced accuracy"),
              _c("few_shot_accuracy", "float or null", "fraction",
                 "last round's few-shot accuracy (segmentation: few-shot pixel recall)"),
              _c("personalised_own_mix_accuracy", "float or null", "fraction",
                 "last round's personalised accuracy on each client's own class mix "
                 "(NaN: the strategy keeps no personalised models)"),
              _c("personalised_accuracy", "float or null", "fraction",
                 "last round's personalised models on the balanced test set (NaN: none "
                 "scored)"),
              _c("global_own_mix_accuracy", "float or null", "fraction",
                 "last round's global model on each client's own class mix"),
              _c("val_accuracy", "float or null", "fraction",
                 "last round's validation accuracy (NaN: no validation set)"),
              _c("val_balanced_accuracy", "float or null", "fraction",
                 "last round's balanced validation accuracy"),
              _c("miou", "float or null", "fraction", "last round's mIoU on the test set "
                 "(segmentation, where `final_accuracy` counts pixels and the background "
                 "dominates; NaN: classification)"),
              _c("val_miou", "float or null", "fraction",
                 "last round's mIoU on the validation set (segmentation; NaN otherwise)"),
              _c("rounds", "int or null", "", "rounds completed"),
              _c("sim_time_h", "float or null", "h", "simulated time of the last round"),
              _c("bytes_up", "int or null", "bytes", "wire bytes delivered to satellites"),
              _c("bytes_down", "int or null", "bytes", "wire bytes delivered to the ground"),
              _c("energy_j", "float or null", "J", "training and radio energy"),
              _c("train_imbalance_factor", "float or null", "",
                 "true imbalance factor of the training set"),
              _c("to_<acc>_round", "float", "", "first round reaching the threshold, in the "
                 "run's `time_to_target_metric` (accuracy, or mIoU for segmentation; NaN: "
                 "never)"),
              _c("to_<acc>_sim_time_s", "float", "s", "its simulated time"),
              _c("to_<acc>_wall_time_s", "float", "s", "its wall time since the run started"),
              _c("to_<acc>_bytes_up", "float", "bytes", "wire bytes up by then"),
              _c("to_<acc>_bytes_down", "float", "bytes", "wire bytes down by then"),
              _c("reused", "bool", "", "the point was complete from an earlier sweep"),
              _c("wall_time_total_s", "float", "s", "wall time of the sweep call that "
                 "wrote this table: a point `reused` from an earlier call adds nothing "
                 "here (its `wall_s` is its own run's)"))),
    Table("sweep_summary.parquet", "In the sweep directory, beside `sweep.parquet` (written "
          "with it, also after Ctrl-C): one row per group and metric over the group's "
          "complete runs (`orbitfl/analysis/sweep_summary.py`). A headline metric has a "
          "mean with its 95 % Student-t interval; a time to target `to_<acc>_<quantity>` "
          "has a Kaplan-Meier median instead, a run that never reached the target counting "
          "as censored at its last value (the rounds it completed, its simulated time, "
          "wall time or bytes), never dropped.", (
              _c("group", "str", "", "the group (`sweep.parquet`'s `group`)"),
              _c("<parameter>", "as swept", "", "the group's value at that YAML path"),
              _c("metric", "str", "", "a column of `sweep.parquet`: `final_accuracy`, "
                 "`balanced_accuracy`, `few_shot_accuracy`, `personalised_own_mix_accuracy`, "
                 "`val_accuracy`, `val_balanced_accuracy`, `rounds`, `sim_time_h`, "
                 "`bytes_up`, `bytes_down`, `energy_j`, `wall_s`, `miou` and `val_miou` "
                 "where a run has them (segmentation), then "
                 "`to_<acc>_round|sim_time_s|wall_time_s|bytes_up|bytes_down`"),
              _c("n", "int", "runs", "complete runs with a value (time to target: complete "
                 "runs, reached or censored)"),
              _c("mean", "float", "as metric", "mean over those runs (NaN for a time to "
                 "target: a mean of the runs that reached it would drop the slow ones)"),
              _c("sd", "float", "as metric", "sample standard deviation (n - 1; NaN: n < 2)"),
              _c("lo", "float", "as metric", "lower end of the 95 % t-interval of the mean"),
              _c("hi", "float", "as metric", "upper end of the 95 % t-interval of the mean"),
              _c("reached", "float", "runs", "time to target: runs that reached it (NaN "
                 "for other metrics)"),
              _c("fraction_reached", "float", "fraction", "time to target: reached / n"),
              _c("median", "float", "as metric", "time to target: Kaplan-Meier median, the "
                 "first value at which the fraction of runs short of the target is <= 0.5 "
                 "(NaN: not reached by half the runs)"),
              _c("median_lo", "float", "as metric", "lower end of its 95 % interval, where "
                 "the log-log band of the Kaplan-Meier curve crosses 0.5 "
                 "(Brookmeyer-Crowley)"),
              _c("median_hi", "float", "as metric", "upper end of that interval (inf: the "
                 "runs do not bound it from above)"))),
    Table("summary.csv", "In an `orbitfl report SWEEP_DIR` folder: `sweep_summary.parquet`'s "
          "rows for the metrics some run measured and for the report's time to target "
          "(`--target`), each with its group's baseline (`--baseline`) and the group minus "
          "that baseline paired by replicate (`analysis/comparisons.py`).", (
              _c("group", "str", "", "the group (`sweep.parquet`'s `group`)"),
              _c("<parameter>", "as swept", "", "the group's value at that YAML path"),
              _c("metric", "str", "", "as in `sweep_summary.parquet`: a headline metric, "
                 "or `to_<acc>_sim_time_s` for the time to target"),
              _c("n", "int", "runs", "as in `sweep_summary.parquet`"),
              *[_c(name, "float", unit, f"as in `sweep_summary.parquet`{why}")
                for name, unit, why in (
                    ("mean", "as metric", ""), ("sd", "as metric", ""),
                    ("lo", "as metric", ""), ("hi", "as metric", ""),
                    ("reached", "runs", ""), ("fraction_reached", "fraction", ""),
                    ("median", "as metric", ""),
                    ("median_lo", "as metric", " (NaN for a group of one run)"),
                    ("median_hi", "as metric", " (NaN for a group of one run)"))],
              _c("label", "str", "", "the group as `path=value, ...`"),
              _c("baseline", "str or null", "", "the group it is compared with: the one "
                 "with `--baseline`'s values and this group's other values (null: none)"),
              _c("pairs", "float", "runs", "replicates paired with the baseline's (NaN: the "
                 "baseline itself, or no pair)"),
              _c("difference", "float", "as metric", "mean of group minus baseline over "
                 "the pairs"),
              _c("difference_lo", "float", "as metric", "lower end of its simultaneous 95 % "
                 "interval: Bonferroni over the `comparisons` of the metric"),
              _c("difference_hi", "float", "as metric", "upper end of that interval"),
              _c("p_holm", "float", "", "Holm-adjusted p-value of the paired t-test of "
                 "zero difference"),
              _c("comparisons", "float", "", "comparisons of this metric reported (the "
                 "family of the adjustment)"))),
    Table("time_split.csv", "In an `orbitfl report SWEEP_DIR` folder: where each group's "
          "time to target goes, rounds needed (learning) against simulated hours per round "
          "(network), the rounds' time split by what they waited for "
          "(`analysis/time_split.py`).", (
              _c("group", "str", "", "the group (`sweep.parquet`'s `group`)"),
              _c("<parameter>", "as swept", "", "the group's value at that YAML path"),
              _c("label", "str", "", "the group as `path=value, ...`"),
              _c("n", "int", "runs", "complete runs"),
              _c("reached", "float", "runs", "runs that reached the target"),
              _c("rounds_needed", "float", "rounds", "Kaplan-Meier median of the rounds to "
                 "the target (runs that never reached censored at their rounds)"),
              _c("rounds_lo", "float", "rounds", "lower end of its 95 % interval"),
              _c("rounds_hi", "float", "rounds", "upper end (inf: not bounded)"),
              _c("hours_per_round", "float", "h", "mean over the runs of simulated time "
                 "over rounds"),
              _c("hours_per_round_lo", "float", "h", "lower end of its 95 % t-interval"),
              _c("hours_per_round_hi", "float", "h", "upper end of that interval"),
              _c("time_to_target_h", "float", "h", "Kaplan-Meier median simulated time to "
                 "the target"),
              _c("time_to_target_lo", "float", "h", "lower end of its 95 % interval"),
              _c("time_to_target_hi", "float", "h", "upper end (inf: not bounded)"),
              *[_c(f"share_{factor}", "float", "fraction", f"share of the rounds' time "
                   f"{why} (the complete runs' rounds pooled; NaN: no clients.parquet)")
                for factor, why in (
                    ("waiting_for_a_contact", "spent waiting for a contact"),
                    ("transfer", "with a payload on the air"),
                    ("battery", "training waited for charge"),
                    ("training", "spent training on board"),
                    ("no_update_in_time", "of rounds that no update closed"))])),
)}

_IN_REPORT = "In a contact report (`orbitfl contacts --report DIR`, beside `contacts.parquet` " \
             "and the same tables as .csv): "
_DESCRIBED = (_c("count", "int", "", "how many"),
              _c("mean_s", "float", "s", "mean (NaN: none)"),
              *(_c(f"{q}_s", "float", "s", f"{what} (NaN: none)") for q, what in (
                  ("min", "shortest"), ("p10", "10th percentile"), ("median", "median"),
                  ("p90", "90th percentile"), ("max", "longest"))))
_SATELLITE_OR_ALL = _c("satellite", "str", "", "satellite name, or `(all)` for every "
                                               "satellite together")
_CONTACT_REPORT_TABLES = (
    Table("pass_durations.parquet", _IN_REPORT + "pass durations per satellite and "
          "overall.", (_SATELLITE_OR_ALL, *_DESCRIBED)),
    Table("revisit_gaps.parquet", _IN_REPORT + "every stretch of a satellite without "
          "contact to any station (overlapping passes over two stations count as one).", (
              _c("satellite", "str", "", "satellite name"),
              _c("start_s", "float", "s", "end of a pass (0: the epoch)"),
              _c("end_s", "float", "s", "start of the next pass (the horizon after the last)"),
              _c("gap_s", "float", "s", "end_s - start_s"),
              _c("censored", "bool", "", "before the first or after the last pass: the gap "
                 "is cut by the horizon, its length a lower bound"))),
    Table("revisit_summary.parquet", _IN_REPORT + "revisit gaps between passes per "
          "satellite and overall (censored gaps left out of the statistics), and the "
          "longest gap of all.", (
              _SATELLITE_OR_ALL, *_DESCRIBED,
              _c("longest_gap_s", "float", "s", "the longest gap, censored ones included"),
              _c("longest_gap_start_s", "float", "s", "when it began (NaN: no gap)"),
              _c("longest_gap_satellite", "str", "", "whose gap it is"),
              _c("longest_gap_censored", "bool", "", "it is cut by the horizon"))),
    Table("concurrency.parquet", _IN_REPORT + "passes in view of each station as a step "
          "function from its first pass start to its last pass end.", (
              _c("station", "str", "", "ground station id"),
              _c("start_s", "float", "s", "interval start"),
              _c("end_s", "float", "s", "interval end"),
              _c("passes", "int", "", "passes in view throughout the interval"))),
    Table("station_load.parquet", _IN_REPORT + "each station's passes against its "
          "antennas.", (
              _c("station", "str", "", "ground station id"),
              _c("antennas", "int", "", "simultaneous passes it can serve"),
              _c("passes", "int", "", "passes over it in the horizon"),
              _c("passes_per_day", "float", "1/day", "passes per day of horizon"),
              _c("peak_passes", "int", "", "most passes in view at once"),
              _c("time_over_capacity_s", "float", "s",
                 "time with more passes in view than antennas"),
              _c("over_capacity_episodes", "int", "", "separate stretches of such time"),
              _c("first_over_capacity_s", "float", "s", "when the first began (NaN: never)"))),
    Table("station_volume.parquet", _IN_REPORT + "bytes the passes over each station could "
          "carry on each UTC day (the link budget's rate integrated over each pass, split "
          "at midnight; antenna limits not deducted).", (
              _c("station", "str", "", "ground station id"),
              _c("date", "str", "", "UTC day, YYYY-MM-DD"),
              _c("downlink_bytes", "float", "bytes", "satellite-to-ground capacity"),
              _c("uplink_bytes", "float", "bytes", "ground-to-satellite capacity"))),
    Table("pass_profiles.parquet", _IN_REPORT + "the downlink sampled every "
          "`links.sample_s` over the highest pass of each station.", (
              _c("station", "str", "", "ground station id"),
              _c("satellite", "str", "", "the satellite of that pass"),
              _c("t_s", "float", "s", "simulated seconds since the epoch"),
              _c("since_start_s", "float", "s", "seconds since the pass began"),
              _c("elevation_deg", "float", "deg", "elevation seen from the station"),
              _c("range_km", "float", "km", "slant range"),
              _c("atmosphere_db", "float", "dB", "atmospheric loss in the budget: ITU-R rain "
                 "+ cloud + gas with `links.weather`, else the band's clear-sky estimate "
                 "(NaN: fixed rate)"),
              _c("es_n0_db", "float", "dB", "Es/N0 of the link budget (NaN: fixed rate)"),
              _c("modcod", "str", "", "DVB-S2 MODCOD adaptive coding picks (`none`: none "
                 "closes; `fixed`: a fixed-rate link)"),
              _c("rate_bps", "float", "bit/s", "information rate"))),
)
TABLES.update({t.file: t for t in _CONTACT_REPORT_TABLES})
CONTACT_REPORT = tuple(t.file for t in _CONTACT_REPORT_TABLES)  # not in a run directory

_SEP = "\0"  # never part of a column name


def _pattern_regex(name: str, group: int, seen: dict[str, str]) -> str:
    """A pattern column as a regular expression; a placeholder repeated within its group
    must take the same value (a back-reference)."""
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(name):
        parts.append(re.escape(name[last:match.start()]))
        placeholder = match.group(1)
        if placeholder in seen:
            parts.append(f"(?P={seen[placeholder]})")
        else:
            seen[placeholder] = f"{placeholder}_{group}"
            parts.append(f"(?P<{seen[placeholder]}>{PLACEHOLDERS[placeholder][0]})")
        last = match.end()
    return "".join(parts) + re.escape(name[last:])


def table_regex(table: Table) -> re.Pattern:
    """The whole column list of ``table`` (names joined by NUL, each followed by one) as
    one regular expression: literal names in order, each group of adjacent pattern columns
    repeated zero or more times."""
    parts: list[str] = []
    group: list[str] = []
    seen: dict[str, str] = {}

    def close() -> None:
        if group:
            parts.append(f"(?:{''.join(group)})*")
            group.clear()
            seen.clear()

    for column in table.columns:
        if column.is_pattern:
            group.append(_pattern_regex(column.name, len(parts), seen) + _SEP)
        else:
            close()
            parts.append(re.escape(column.name) + _SEP)
    close()
    return re.compile("".join(parts))


def declared_column(file: str, name: str) -> Column:
    """The declaration of one column of ``file``: its own, or the most specific pattern it
    matches (``to_0.5_round`` is a threshold column, not a swept ``<parameter>``)."""
    columns = TABLES[file].columns
    exact = [c for c in columns if c.name == name]
    patterns = sorted((c for c in columns if c.is_pattern and re.fullmatch(
        _pattern_regex(c.name, 0, {}), name)), key=lambda c: -len(_PLACEHOLDER.sub("", c.name)))
    if not exact + patterns:
        raise KeyError(f"{file}: {name} is not declared")
    return (exact + patterns)[0]


def columns_match(file: str, columns: list[str]) -> bool:
    """Whether ``columns`` (in order) are exactly those declared for ``file``."""
    joined = "".join(f"{name}{_SEP}" for name in map(str, columns))
    return table_regex(TABLES[file]).fullmatch(joined) is not None


def check_columns(file: str, columns: list[str]) -> None:
    """A ``RuntimeError`` (a programming error, never user input) unless ``columns`` are
    exactly the declared ones: a new column must be declared here, and documented."""
    if file not in TABLES:
        raise RuntimeError(f"{file}: not declared in orbitfl/rundir/columns.py")
    if not columns_match(file, list(columns)):
        raise RuntimeError(f"{file}: columns {list(columns)} differ from the declaration "
                           f"{TABLES[file].names} in orbitfl/rundir/columns.py; declare them there "
                           f"and run {REGENERATE}")


def expand(file: str, values: dict[str, list[str]]) -> list[str]:
    """The declared columns of ``file`` in order, each pattern group written out once per
    value of its one placeholder (``values[placeholder]``), for writers that reindex."""
    names: list[str] = []
    group: list[str] = []

    def close() -> None:
        if group:
            (placeholder,) = {p for name in group for p in _PLACEHOLDER.findall(name)}
            names.extend(name.replace(f"<{placeholder}>", str(value))
                         for value in values[placeholder] for name in group)
            group.clear()

    for column in TABLES[file].columns:
        if column.is_pattern:
            group.append(column.name)
        else:
            close()
            names.append(column.name)
    close()
    return names


def markdown() -> str:
    """``docs/run-directory.md``: every table's columns with type, unit and meaning."""
    lines = [
        "# The run directory, column by column",
        "",
        f"Generated from `orbitfl/rundir/columns.py` by `{REGENERATE}`; do not edit by hand (a "
        "test fails when this file and the declaration differ, and the writer refuses a "
        "table whose columns or their types differ from it). "
        "[README](../README.md#what-a-run-produces) "
        "says what each file is for.",
        "",
        "A name with `<placeholders>` stands for a family of columns, written in the "
        "position shown; adjacent such names repeat together, once per value:",
        "",
        *[f"- `<{name}>`: {meaning}" for name, (_, meaning) in PLACEHOLDERS.items()],
        "",
        "Types: `int`, `float` (NaN where a value does not apply), `str`, `bool`; "
        "`or null` marks columns that may be empty. Fractions run from 0 to 1.",
    ]
    for table in TABLES.values():
        lines += ["", f"## `{table.file}`", "", table.about, "",
                  "| column | type | unit | meaning |", "|---|---|---|---|"]
        lines += [f"| `{table_cell(c.name)}` | {table_cell(c.dtype)} | {table_cell(c.unit)} | "
                  f"{table_cell(c.meaning)} |" for c in table.columns]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return generator_main("python -m orbitfl.rundir.columns",
                          "Write the run directory's documentation.", markdown, argv)


if __name__ == "__main__":
    sys.exit(main())
