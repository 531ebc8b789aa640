"""The federated mission on the network clock: one simpy process per client job and one for
the ground server.

Synchronous mode: a round opens, the selected clients get what the strategy sends them,
each payload crossing real links; a client trains (really, in torch) once its payload has
arrived and its onboard computer has spent the simulated time its battery allows; its
update waits for a usable contact; the round closes at a quorum or a deadline and late
updates are dropped. Asynchronous mode (FedBuff): clients work continuously and the server
aggregates every K arrivals, weighting each by its staleness. Nothing is used before the
bytes carrying it have crossed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import simpy

from orbitfl.constellation.network import GROUND, Network
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.metrics import evaluate as metrics
from orbitfl.fl.metrics import mix_weighted_accuracy
from orbitfl.fl.payloads import Payload
from orbitfl.fl.strategy import ClientUpdate, Strategy
from orbitfl.fl.training import predict
from orbitfl.onboard import Onboard


@dataclass(frozen=True)
class Schedule:
    rounds: int                 # sync: rounds; async: aggregations
    deadline_s: float
    min_clients: int
    horizon_s: float
    mode: str = "sync"
    selection: str = "all"
    clients_per_round: int | None = None
    evaluate_every: int = 1
    buffer_size: int = 5        # async
    target_accuracy: float | None = None   # stop at the first evaluation reaching it


@dataclass
class RoundRecord:
    round: int
    opened_s: float
    closed_s: float
    selected: int
    received: int
    accuracy: float = float("nan")
    balanced_accuracy: float = float("nan")
    many_shot_accuracy: float = float("nan")
    medium_shot_accuracy: float = float("nan")
    few_shot_accuracy: float = float("nan")
    personalised_accuracy: float = float("nan")      # on the balanced test set
    personalised_own_mix_accuracy: float = float("nan")  # on each client's class mix
    val_accuracy: float = float("nan")
    val_balanced_accuracy: float = float("nan")
    miou: float = float("nan")               # segmentation
    per_class_accuracy: list[float] = field(default_factory=list)
    clients: list[int] = field(default_factory=list)
    mean_staleness_s: float = float("nan")   # async: simulated seconds, base to arrival
    energy_j: float = 0.0                    # cumulative training + radio energy
    bytes_up: int = 0      # cumulative wire bytes delivered ground -> satellites
    bytes_down: int = 0    # cumulative wire bytes delivered satellites -> ground


@dataclass
class ClientRound:
    """One client's part in one round (sync) or one job (async)."""

    round: int
    client: int
    satellite: str
    selected_s: float
    job: int = 0            # unique per client job (async jobs can share a round number)
    base_version: int = 0
    payload_received_s: float | None = None
    training_s: float | None = None          # simulated compute time
    training_energy_j: float | None = None
    soc_at_training: float | None = None
    update_delivered_s: float | None = None
    uplink_bytes: int = 0     # what reached the satellite (ground -> satellite)
    downlink_bytes: int = 0   # what it sent back
    late: bool | None = None
    aggregated: bool = False
    staleness_versions: int | None = None
    staleness_s: float | None = None


class Mission:
    def __init__(self, env: simpy.Environment, network: Network, onboard: Onboard,
                 strategy: Strategy, client_data: Sequence[ImageSet], test_data: ImageSet,
                 classes: int, client_flops: Sequence[float], schedule: Schedule,
                 train_counts: np.ndarray, rng: np.random.Generator,
                 on_round: Callable[[RoundRecord, Schedule], None] = lambda r, s: None,
                 checkpointer: Callable[[dict], None] | None = None,
                 resume: dict | None = None, replay: Strategy | None = None,
                 validation_data: ImageSet | None = None):
        """``checkpointer`` receives a checkpoint after every round. With ``resume`` (such a
        checkpoint) the mission replays the timeline up to it with ``replay`` (a size-only
        stand-in: no training), installs the saved state into ``strategy`` and goes on."""
        self.env, self.network, self.onboard = env, network, onboard
        self._live, self.strategy = strategy, (replay if resume is not None else strategy)
        self._checkpointer, self._resume = checkpointer, resume
        self._received: dict[int, list[Payload]] = {}      # started, not yet trained
        self._undelivered: dict[int, ClientUpdate] = {}    # trained, not yet taken in
        self._resumed_received: dict[int, list[Payload]] = {}
        self.client_data, self.test_data, self.classes = client_data, test_data, classes
        self.validation_data = validation_data
        self.client_flops, self.schedule = client_flops, schedule
        self.train_counts, self.rng, self.on_round = train_counts, rng, on_round
        self.rounds: list[RoundRecord] = []
        self.client_rounds: list[ClientRound] = []
        self._busy = [False] * len(client_data)
        self._closed: set[int] = set()
        self._client_freed = env.event()
        self._published_at = {0: 0.0}  # global version -> simulated time it was published

    def run(self) -> list[RoundRecord]:
        self._record(RoundRecord(0, 0.0, 0.0, 0, 0), evaluate=True)
        process = self._sync_server() if self.schedule.mode == "sync" else self._async_server()
        self.env.run(until=self.env.process(process))
        return self.rounds

    # -- synchronous ----------------------------------------------------------------------
    def _sync_server(self):
        env, sched = self.env, self.schedule
        for r in range(1, sched.rounds + 1):
            while not (idle := self._idle_clients()):
                if env.now >= sched.horizon_s:
                    return
                yield self._client_freed | env.timeout(sched.horizon_s - env.now)
            if env.now >= sched.horizon_s:
                return
            selected = self._select(idle)
            opened = env.now
            deadline_at = min(opened + sched.deadline_s, sched.horizon_s)
            inbox = simpy.Store(env)
            for client in selected:
                self._start_job(r, client, inbox, priority=deadline_at)
            quorum = min(sched.min_clients, len(selected))
            if sched.selection == "first-k":
                quorum = min(sched.clients_per_round, len(selected))
            deadline = env.timeout(deadline_at - env.now)
            taken: list[tuple[int, ClientUpdate]] = []   # (job, update)
            while len(taken) < quorum:
                get = inbox.get()
                outcome = yield get | deadline
                if get not in outcome:
                    get.cancel()
                    break
                taken.append(self._take(get.value))
            self._closed.add(r)
            updates = [u for _, u in taken]
            if updates:
                self.strategy.aggregate(r, updates)
                self._published_at[self.strategy.version] = env.now
            self._mark_aggregated(taken)
            evaluate = r % sched.evaluate_every == 0 or r == sched.rounds
            self._record(RoundRecord(r, opened, env.now, len(selected), len(updates),
                                     clients=[u.client_id for u in updates]), evaluate)
            self._round_done(r)
            if self.target_reached():
                return

    def _select(self, idle: list[int]) -> list[int]:
        sched = self.schedule
        k = sched.clients_per_round or len(idle)
        if sched.selection == "random-k":
            return sorted(self.rng.choice(idle, size=min(k, len(idle)), replace=False).tolist())
        if sched.selection == "next-contact":
            soon = sorted(idle, key=lambda c: self.network.next_contact_start(
                self.network.satellites[c], self.env.now, "up"))
            return soon[:k]
        return idle  # "all", and "first-k" (everyone is asked, the first k count)

    # -- asynchronous (FedBuff) -----------------------------------------------------------
    def _async_server(self):
        env, sched = self.env, self.schedule
        inbox = simpy.Store(env)
        buffer: list[tuple[int, ClientUpdate]] = []   # (job, update)
        aggregations = 0
        opened = env.now
        while aggregations < sched.rounds and env.now < sched.horizon_s:
            for client in self._idle_clients():
                self._start_job(aggregations + 1, client, inbox, priority=env.now)
            get = inbox.get()
            outcome = yield get | self._client_freed | env.timeout(sched.horizon_s - env.now)
            if get not in outcome:
                get.cancel()
                continue
            buffer.append(self._take(get.value))
            if len(buffer) < sched.buffer_size:
                continue
            aggregations += 1
            updates = [u for _, u in buffer]
            staleness = [env.now - self._published_at[u.base_version] for u in updates]
            self.strategy.aggregate(aggregations, updates)
            self._published_at[self.strategy.version] = env.now
            self._mark_aggregated(buffer)
            evaluate = aggregations % sched.evaluate_every == 0 or aggregations == sched.rounds
            self._record(RoundRecord(aggregations, opened, env.now, len(buffer), len(buffer),
                                     clients=[u.client_id for u in updates],
                                     mean_staleness_s=float(np.mean(staleness))), evaluate)
            self._round_done(aggregations)
            if self.target_reached():
                return
            buffer, opened = [], env.now

    # -- clients --------------------------------------------------------------------------
    def _idle_clients(self) -> list[int]:
        return [c for c, busy in enumerate(self._busy)
                if not busy and not self.onboard.failed(c, self.env.now)]

    def _start_job(self, r: int, client: int, inbox: simpy.Store, priority: float) -> None:
        self._busy[client] = True
        entry = ClientRound(r, client, self.network.satellites[client], self.env.now,
                            job=len(self.client_rounds), base_version=self.strategy.version)
        self.client_rounds.append(entry)
        self.env.process(self._client_job(entry, inbox, priority))

    def _client_job(self, entry: ClientRound, inbox: simpy.Store, priority: float):
        r, client, satellite = entry.round, entry.client, entry.satellite
        received = self.strategy.to_client(r, client)  # contents fixed at broadcast time
        self._received[entry.job] = received
        for payload in received:
            yield self.network.relay(payload.kind, payload.nbytes, GROUND, satellite,
                                     priority=priority, round=r, client=client,
                                     job=entry.job, raw_bytes=payload.raw_nbytes)
            entry.uplink_bytes += payload.nbytes
        entry.payload_received_s = self.env.now
        battery = self.onboard.batteries[client]
        battery.advance(self.env.now)
        entry.soc_at_training = battery.soc
        completed = yield self.env.process(self.onboard.train(
            self.env, client, self.client_flops[client], self.schedule.horizon_s))
        if not completed:
            return  # failed or out of time: the client stays busy for good
        entry.training_s = self.onboard.chip.training_time_s(self.client_flops[client])
        entry.training_energy_j = self.onboard.chip.training_energy_j(self.client_flops[client])
        update = self._fit(entry, received)
        uploads = []
        for payload in update.payloads:
            uploads += yield self.network.relay(payload.kind, payload.nbytes, satellite, GROUND,
                                                priority=priority, round=r, client=client,
                                                job=entry.job, raw_bytes=payload.raw_nbytes)
            entry.downlink_bytes += payload.nbytes
        entry.update_delivered_s = self.env.now
        entry.late = self.schedule.mode == "sync" and r in self._closed
        if entry.late:
            self._undelivered.pop(entry.job, None)
        entry.staleness_versions = self.strategy.version - update.base_version
        entry.staleness_s = self.env.now - self._published_at[update.base_version]
        for record in uploads:
            record.tag["late"] = entry.late
        self._busy[client] = False
        freed, self._client_freed = self._client_freed, self.env.event()
        freed.succeed()
        if not entry.late:
            inbox.put((entry.job, update))

    def _fit(self, entry: ClientRound, received: list[Payload]) -> ClientUpdate:
        """Local training; while replaying a resumed run, the saved result or a stand-in."""
        job, r, client = entry.job, entry.round, entry.client
        self._received.pop(job, None)
        if self._resume is not None and job in self._resume["undelivered"]:
            update = decode_update(self._resume["undelivered"][job])
        else:
            received = self._resumed_received.pop(job, received)
            update = self.strategy.run_fit(r, client, received, self.client_data[client])
        self._undelivered[job] = update
        return update

    def _take(self, item: tuple[int, ClientUpdate]) -> tuple[int, ClientUpdate]:
        self._undelivered.pop(item[0], None)
        return item

    def _round_done(self, r: int) -> None:
        """Checkpoint; or, when replaying, switch to the saved state at the saved round."""
        if self._resume is not None:
            if r == self._resume["round"]:
                self._live.load_state_dict(self._resume["strategy"])
                self.strategy = self._live
                self._resumed_received = {int(job): [decode_payload(p) for p in payloads]
                                          for job, payloads in self._resume["received"].items()}
                self._resume = None
            return
        if self._checkpointer is not None:
            self._checkpointer({
                "round": r, "strategy": self.strategy.state_dict(),
                "rounds": [asdict(x) for x in self.rounds],
                "received": {job: [encode_payload(p) for p in payloads]
                             for job, payloads in self._received.items()},
                "undelivered": {job: encode_update(u) for job, u in self._undelivered.items()},
            })

    def _mark_aggregated(self, taken: list[tuple[int, ClientUpdate]]) -> None:
        """By job: in async mode two jobs of one client can share a round number, and
        only the one whose update was taken in is aggregated."""
        jobs = {job for job, _ in taken}
        for entry in self.client_rounds:
            if entry.job in jobs:
                entry.aggregated = True

    # -- evaluation -----------------------------------------------------------------------
    def _record(self, record: RoundRecord, evaluate: bool) -> None:
        energy = self.onboard.mission_energy_j(self.env.now)  # same side effects in replay
        if self._resume is not None:  # replaying: the saved record of this round
            saved = RoundRecord(**self._resume["rounds"][len(self.rounds)])
            self.rounds.append(saved)
            self.on_round(saved, self.schedule)
            return
        record.energy_j = energy
        delivered = [t for t in self.network.records if t.status == "delivered"]
        record.bytes_up = sum(t.nbytes for t in delivered if t.src == GROUND)
        record.bytes_down = sum(t.nbytes for t in delivered if t.dst == GROUND)
        if evaluate:
            labels = self.test_data.labels.numpy()
            report = metrics(predict(self.strategy.global_model, self.test_data),
                             labels, self.classes, self.train_counts)
            record.accuracy = report["accuracy"]
            record.balanced_accuracy = report["balanced_accuracy"]
            record.per_class_accuracy = report["per_class_accuracy"]
            for group in ("many", "medium", "few"):
                setattr(record, f"{group}_shot_accuracy", report[f"{group}_shot_accuracy"])
            record.miou = report.get("miou", float("nan"))
            record.personalised_accuracy, record.personalised_own_mix_accuracy = \
                self._personalised_accuracy(labels)
            if self.validation_data is not None and len(self.validation_data):
                val = metrics(predict(self.strategy.global_model, self.validation_data),
                              self.validation_data.labels.numpy(), self.classes)
                record.val_accuracy = val["accuracy"]
                record.val_balanced_accuracy = val["balanced_accuracy"]
        self.rounds.append(record)
        self.on_round(record, self.schedule)

    def target_reached(self) -> bool:
        """The last evaluation reached the scenario's target accuracy (a run may stop)."""
        target = self.schedule.target_accuracy
        return target is not None and bool(self.rounds[-1].accuracy >= target)

    def _personalised_accuracy(self, labels: np.ndarray) -> tuple[float, float]:
        """Mean accuracy of the clients' personalised models (SAFE's FAU keeps one), on the
        balanced test set and on each client's own class mix (the mix-weighted per-class
        accuracy: what personalisation is for, and what the balanced set hides)."""
        personal = getattr(self.strategy, "personal", {})
        if not personal:
            return float("nan"), float("nan")
        worker = self.strategy.worker
        balanced, own_mix = [], []
        for client, state in personal.items():
            worker.load_state_dict(state)
            report = metrics(predict(worker, self.test_data), labels, self.classes)
            balanced.append(report["accuracy"])
            own_mix.append(mix_weighted_accuracy(
                report["per_class_accuracy"], self.client_data[client].class_counts(
                    self.classes)))
        return float(np.mean(balanced)), float(np.mean(own_mix))



def encode_payload(payload: Payload) -> dict:
    return {"kind": payload.kind, "tensors": dict(payload.tensors), "nbytes": payload.nbytes,
            "raw_nbytes": payload.raw_nbytes}


def decode_payload(saved: dict) -> Payload:
    return Payload(saved["kind"], saved["tensors"], int(saved["nbytes"]),
                   int(saved["raw_nbytes"]))


def encode_update(update: ClientUpdate) -> dict:
    return {"client_id": update.client_id, "round_index": update.round_index,
            "num_samples": update.num_samples, "train_loss": update.train_loss,
            "base_version": update.base_version,
            "payloads": [encode_payload(p) for p in update.payloads]}


def decode_update(saved: dict) -> ClientUpdate:
    return ClientUpdate(int(saved["client_id"]), int(saved["round_index"]),
                        int(saved["num_samples"]), [decode_payload(p) for p in saved["payloads"]],
                        float(saved["train_loss"]), int(saved["base_version"]))
