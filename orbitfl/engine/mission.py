"""The federated mission on the network clock: *when* things happen. What is computed
(the strategy, the clients' states, training as futures on an executor) is
orbitfl/engine/learning.py's.

Small simpy processes, one job each: a client job (broadcast over real links, onboard
training on the simulated chip within what its battery allows, upload), the synchronous
rounds (a round opens, the selected clients start from the same global model, the round
closes at a quorum or a deadline and late updates are dropped), the asynchronous buffer
(FedBuff: clients work continuously and every K arrivals are aggregated, each weighted by
its staleness) and the evaluator. A fit is submitted when its job starts and runs while the
simulation goes on; its upload crosses the links with sizes known in advance; its contents
are waited for only at aggregation, evaluation and checkpoints. Nothing is used before the
bytes carrying it have crossed. Checkpointing and resuming are the learning side's
(``Learning.round_done``, orbitfl/engine/replay.py): the loop below has no resume branch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import simpy

from orbitfl.constellation.network import GROUND, RelayNetwork
from orbitfl.constellation.onboard import Onboard
from orbitfl.core.gc_freeze import older_objects_frozen
from orbitfl.core.random_streams import RandomStreams
from orbitfl.engine.evaluation import Evaluator
from orbitfl.engine.learning import LearningSide


@dataclass(frozen=True)
class Schedule:
    """The timing the mission runs: the scenario's ``fl.schedule`` with the rounds, the
    horizon and FedBuff's buffer added (``assemble.schedule``), kept apart so the engine
    and its tests need no scenario."""

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
    target_metric: str = "accuracy"  # what the target reads: mIoU for segmentation
    personalised: str = "every"   # score personalised models at every evaluation, or "last"
    fine_tune: bool = False       # personalise by fine-tuning the global model per client


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
    global_own_mix_accuracy: float = float("nan")  # the global model on each client's mix
    val_accuracy: float = float("nan")           # on the held-out validation set (tuning)
    val_balanced_accuracy: float = float("nan")
    miou: float = float("nan")               # segmentation
    val_miou: float = float("nan")           # segmentation, on the validation set
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


@dataclass
class MissionHooks:
    """What the mission tells its caller as it goes (progress lines, bars, wall clocks)."""

    on_round: Callable[[RoundRecord, Schedule], None] = lambda record, schedule: None


class Mission:
    """The mission's processes over the objects it works with; ``orbitfl/engine/assemble.py``
    builds them (``Assembly.mission``), so a test can hand in its own."""

    def __init__(self, env: simpy.Environment, network: RelayNetwork, onboard: Onboard,
                 learning: LearningSide, evaluator: Evaluator, schedule: Schedule,
                 streams: RandomStreams, hooks: MissionHooks | None = None):
        self.env, self.network, self.onboard = env, network, onboard
        self.learning, self.evaluator, self.schedule = learning, evaluator, schedule
        self.rng = streams.selection()
        self.on_round = (hooks or MissionHooks()).on_round
        self.rounds: list[RoundRecord] = []
        self.client_rounds: list[ClientRound] = []
        self._busy = [False] * len(network.satellites)  # client i flies satellite i
        self._closed: set[int] = set()
        self._client_freed = env.event()
        self._published_at = {0: 0.0}  # global version -> simulated time it was published

    def run(self) -> list[RoundRecord]:
        # everything built before the mission lives until it ends (orbitfl/core/gc_freeze.py)
        with older_objects_frozen():
            try:
                self._record(RoundRecord(0, 0.0, 0.0, 0, 0), evaluate=True)
                process = self._sync_server() if self.schedule.mode == "sync" \
                    else self._async_server()
                self.env.run(until=self.env.process(process))
            finally:
                self.learning.close()
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
            taken: list[int] = []   # jobs, in order of arrival
            while len(taken) < quorum:
                get = inbox.get()
                outcome = yield get | deadline
                if get not in outcome:
                    get.cancel()
                    break
                taken.append(get.value)
            self._closed.add(r)
            self._aggregate(r, taken)
            evaluate = r % sched.evaluate_every == 0 or r == sched.rounds
            self._record(RoundRecord(r, opened, env.now, len(selected), len(taken),
                                     clients=self._clients_of(taken)), evaluate)
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
        buffer: list[int] = []   # jobs, in order of arrival
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
            buffer.append(get.value)
            if len(buffer) < sched.buffer_size:
                continue
            aggregations += 1
            staleness = [env.now - self._published_at[self.client_rounds[job].base_version]
                         for job in buffer]
            self._aggregate(aggregations, buffer)
            evaluate = aggregations % sched.evaluate_every == 0 or aggregations == sched.rounds
            self._record(RoundRecord(aggregations, opened, env.now, len(buffer), len(buffer),
                                     clients=self._clients_of(buffer),
                                     mean_staleness_s=float(np.mean(staleness))), evaluate)
            self._round_done(aggregations)
            if self.target_reached():
                return
            buffer, opened = [], env.now

    # -- aggregation and rounds -----------------------------------------------------------
    def _aggregate(self, r: int, jobs: list[int]) -> None:
        """By job: in async mode two jobs of one client can share a round number, and
        only the one whose update was taken in is aggregated."""
        if not jobs:
            return
        self.learning.aggregate(r, jobs)
        self._published_at[self.learning.version] = self.env.now
        for job in jobs:
            self.client_rounds[job].aggregated = True

    def _clients_of(self, jobs: list[int]) -> list[int]:
        return [self.client_rounds[job].client for job in jobs]

    def _round_done(self, r: int) -> None:
        """Checkpoint (live), or hand over to the saved state at the saved round (replay)."""
        jobs = {e.job: (e.round, e.client) for e in self.client_rounds}
        self.learning = self.learning.round_done(r, [asdict(x) for x in self.rounds], jobs)

    # -- clients --------------------------------------------------------------------------
    def _idle_clients(self) -> list[int]:
        return [c for c, busy in enumerate(self._busy)
                if not busy and not self.onboard.failed(c, self.env.now)]

    def _start_job(self, r: int, client: int, inbox: simpy.Store, priority: float) -> None:
        self._busy[client] = True
        entry = ClientRound(r, client, self.network.satellites[client], self.env.now,
                            job=len(self.client_rounds), base_version=self.learning.version)
        self.client_rounds.append(entry)
        self.env.process(self._client_job(entry, inbox, priority))

    def _client_job(self, entry: ClientRound, inbox: simpy.Store, priority: float):
        r, client, satellite, job = entry.round, entry.client, entry.satellite, entry.job
        # contents fixed at broadcast time; the fit is submitted now and runs meanwhile
        received = self.learning.broadcast(job, r, client)
        for payload in received:
            yield self.network.relay(payload.kind, payload.nbytes, GROUND, satellite,
                                     priority=priority, round=r, client=client,
                                     job=job, raw_bytes=payload.raw_nbytes)
            entry.uplink_bytes += payload.nbytes
        entry.payload_received_s = self.env.now
        battery = self.onboard.batteries[client]
        battery.advance(self.env.now)
        entry.soc_at_training = battery.soc
        flops = self.learning.job_flops(client)
        completed = yield self.env.process(self.onboard.train(
            self.env, client, flops, self.schedule.horizon_s))
        if not completed:
            return  # failed or out of time: the client stays busy for good
        entry.training_s = self.onboard.chip.training_time_s(flops)
        entry.training_energy_j = self.onboard.chip.training_energy_j(flops)
        uploads = []
        for size in self.learning.trained(job):  # sizes known before the fit has finished
            uploads += yield self.network.relay(size.kind, size.nbytes, satellite, GROUND,
                                                priority=priority, round=r, client=client,
                                                job=job, raw_bytes=size.raw_nbytes)
            entry.downlink_bytes += size.nbytes
        entry.update_delivered_s = self.env.now
        entry.late = self.schedule.mode == "sync" and r in self._closed
        if entry.late:
            self.learning.dropped(job)
        entry.staleness_versions = self.learning.version - entry.base_version
        entry.staleness_s = self.env.now - self._published_at[entry.base_version]
        for record in uploads:
            record.tag["late"] = entry.late
        self._busy[client] = False
        freed, self._client_freed = self._client_freed, self.env.event()
        freed.succeed()
        if not entry.late:
            inbox.put(job)

    # -- evaluation -----------------------------------------------------------------------
    def _record(self, record: RoundRecord, evaluate: bool) -> None:
        energy = self.onboard.mission_energy_j(self.env.now)  # same side effects in replay
        saved = self.learning.saved_record(len(self.rounds))
        if saved is not None:
            record = RoundRecord(**saved)
        else:
            record.energy_j = energy
            delivered = [t for t in self.network.records if t.status == "delivered"]
            record.bytes_up = sum(t.nbytes for t in delivered if t.src == GROUND)
            record.bytes_down = sum(t.nbytes for t in delivered if t.dst == GROUND)
            if evaluate:
                self.evaluator.evaluate(record, self._personal(record.round))
        self.rounds.append(record)
        self.on_round(record, self.schedule)

    def _personal(self, round_index: int) -> dict[int, dict] | None:
        """The personal models to score at this evaluation (None: not at this one; with
        ``personalised: last``, only at the last round, where a run without a target
        stops)."""
        last = round_index == self.schedule.rounds
        if self.schedule.personalised == "last" and not last:
            return None
        if round_index == 0:
            return None if self.schedule.fine_tune else self.learning.personal_models()
        return self.learning.personal_models()

    def target_reached(self) -> bool:
        """The last evaluation reached the scenario's target (a run may stop): its accuracy,
        or its mIoU for segmentation, whose pixel accuracy the background sets."""
        target = self.schedule.target_accuracy
        return target is not None and bool(
            getattr(self.rounds[-1], self.schedule.target_metric) >= target)
