"""The federated mission on the network clock: one simpy process per client job and one for
the ground server (synchronous rounds with a quorum and a deadline).

The clock decides when, torch decides what: a client trains (really) only once its payload
has crossed the uplink and its onboard computer has spent the simulated time its battery
allows, and the server sees an update only after the downlink has delivered every byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import simpy

from orbitfl.constellation.network import GROUND, Network
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.strategy import ClientUpdate, Strategy
from orbitfl.fl.training import accuracy_report, predict
from orbitfl.onboard import Onboard


@dataclass(frozen=True)
class SyncSchedule:
    rounds: int
    deadline_s: float
    min_clients: int
    horizon_s: float


@dataclass
class RoundRecord:
    round: int
    opened_s: float
    closed_s: float
    selected: int
    received: int
    accuracy: float
    balanced_accuracy: float
    per_class_accuracy: list[float]
    bytes_up: int = 0      # cumulative, ground -> satellites, delivered by closed_s
    bytes_down: int = 0    # cumulative, satellites -> ground
    clients: list[int] = field(default_factory=list)


@dataclass
class ClientRound:
    """One client's part in one round."""

    round: int
    client: int
    satellite: str
    selected_s: float
    payload_received_s: float | None = None
    training_s: float | None = None          # simulated compute time
    training_energy_j: float | None = None
    soc_at_training: float | None = None
    update_delivered_s: float | None = None
    uplink_bytes: int = 0     # what reached the satellite (ground -> satellite)
    downlink_bytes: int = 0   # what it sent back
    late: bool | None = None
    aggregated: bool = False


class SyncMission:
    """Synchronous FL: a round closes at ``min_clients`` updates or at its deadline.

    Only idle clients are selected; updates that arrive after their round closed are late
    and dropped (their bytes still crossed the links and are counted).
    """

    def __init__(self, env: simpy.Environment, network: Network, onboard: Onboard,
                 strategy: Strategy, client_data: Sequence[ImageSet], test_data: ImageSet,
                 classes: int, client_flops: Sequence[float], schedule: SyncSchedule,
                 on_round: Callable[[RoundRecord, SyncSchedule], None] = lambda r, s: None):
        self.env, self.network, self.onboard, self.strategy = env, network, onboard, strategy
        self.client_data, self.test_data, self.classes = client_data, test_data, classes
        self.client_flops = client_flops
        self.schedule = schedule
        self.on_round = on_round
        self.rounds: list[RoundRecord] = []
        self.client_rounds: list[ClientRound] = []
        self._busy = [False] * len(client_data)
        self._closed: set[int] = set()
        self._client_freed = env.event()

    def run(self) -> list[RoundRecord]:
        self._record(0, 0.0, 0.0, [], [])  # the initial model, before any byte moved
        server = self.env.process(self._server())
        self.env.run(until=server)
        return self.rounds

    def _server(self):
        env, sched = self.env, self.schedule
        for r in range(1, sched.rounds + 1):
            while not (idle := self._idle_clients()):
                if env.now >= sched.horizon_s:
                    return
                yield self._client_freed | env.timeout(sched.horizon_s - env.now)
            if env.now >= sched.horizon_s:
                return
            opened = env.now
            inbox = simpy.Store(env)
            for client in idle:
                self._busy[client] = True
                entry = ClientRound(r, client, self.network.satellites[client], opened)
                self.client_rounds.append(entry)
                env.process(self._client_job(entry, inbox))
            quorum = min(sched.min_clients, len(idle))
            deadline = env.timeout(min(sched.deadline_s, sched.horizon_s - env.now))
            updates: list[ClientUpdate] = []
            while len(updates) < quorum:
                get = inbox.get()
                outcome = yield get | deadline
                if get not in outcome:
                    get.cancel()
                    break
                updates.append(get.value)
            self._closed.add(r)
            if updates:
                self.strategy.aggregate(r, updates)
            for entry in self.client_rounds:
                if entry.round == r and entry.client in {u.client_id for u in updates}:
                    entry.aggregated = True
            self._record(r, opened, env.now, idle, updates)

    def _idle_clients(self) -> list[int]:
        return [c for c, busy in enumerate(self._busy)
                if not busy and not self.onboard.failed(c, self.env.now)]

    def _client_job(self, entry: ClientRound, inbox: simpy.Store):
        r, client, satellite = entry.round, entry.client, entry.satellite
        received = self.strategy.to_client(r, client)  # contents fixed at broadcast time
        for payload in received:
            yield self.network.relay(payload.kind, payload.nbytes, GROUND, satellite,
                                            round=r, client=client)
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
        update = self.strategy.fit(r, client, received, self.client_data[client])
        uploads = []
        for payload in update.payloads:
            uploads += yield self.network.relay(payload.kind, payload.nbytes, satellite, GROUND,
                                                round=r, client=client)
            entry.downlink_bytes += payload.nbytes
        entry.update_delivered_s = self.env.now
        entry.late = r in self._closed
        for record in uploads:
            record.tag["late"] = entry.late
        self._busy[client] = False
        freed, self._client_freed = self._client_freed, self.env.event()
        freed.succeed()
        if not entry.late:
            inbox.put(update)

    def _record(self, r: int, opened: float, closed: float, selected: list[int],
                updates: list[ClientUpdate]) -> None:
        report = accuracy_report(predict(self.strategy.global_model, self.test_data),
                                 self.test_data.labels.numpy(), self.classes)
        up = sum(t.nbytes for t in self.network.records
                 if t.status == "delivered" and t.src == GROUND)
        down = sum(t.nbytes for t in self.network.records
                   if t.status == "delivered" and t.dst == GROUND)
        record = RoundRecord(r, opened, closed, len(selected), len(updates),
                             report["accuracy"], report["balanced_accuracy"],
                             report["per_class_accuracy"], up, down,
                             [u.client_id for u in updates])
        self.rounds.append(record)
        self.on_round(record, self.schedule)
