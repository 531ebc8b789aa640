"""The federated mission on the network clock: one simpy process per client job and one for
the ground server (synchronous rounds with a quorum and a deadline).

The clock decides when, torch decides what: a client trains (really) only once its payload
has crossed the uplink and its simulated compute time has passed, and the server sees an
update only after the downlink has delivered every byte of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import simpy

from orbitfl.constellation.network import GROUND, Network
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.strategy import ClientUpdate, Strategy
from orbitfl.fl.training import accuracy_report, predict


@dataclass(frozen=True)
class SyncSchedule:
    rounds: int
    deadline_s: float
    min_clients: int
    training_duration_s: float
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


class SyncMission:
    """Synchronous FL: a round closes at ``min_clients`` updates or at its deadline.

    Only idle clients are selected; updates that arrive after their round closed are late
    and dropped (their bytes still crossed the links and are counted).
    """

    def __init__(self, env: simpy.Environment, network: Network, strategy: Strategy,
                 client_data: Sequence[ImageSet], test_data: ImageSet, classes: int,
                 schedule: SyncSchedule,
                 on_round: Callable[[RoundRecord, SyncSchedule], None] = lambda r, s: None):
        self.env, self.network, self.strategy = env, network, strategy
        self.client_data, self.test_data, self.classes = client_data, test_data, classes
        self.schedule = schedule
        self.on_round = on_round
        self.rounds: list[RoundRecord] = []
        self._busy = [False] * len(client_data)
        self._closed: set[int] = set()
        self._client_freed = env.event()

    def run(self) -> list[RoundRecord]:
        self._record(0, 0.0, 0.0, [], 0)  # the initial model, before any byte moved
        server = self.env.process(self._server())
        self.env.run(until=server)
        return self.rounds

    def _server(self):
        env, sched = self.env, self.schedule
        for r in range(1, sched.rounds + 1):
            while not (idle := [c for c, busy in enumerate(self._busy) if not busy]):
                if env.now >= sched.horizon_s:
                    return
                yield self._client_freed | env.timeout(sched.horizon_s - env.now)
            if env.now >= sched.horizon_s:
                return
            opened = env.now
            inbox = simpy.Store(env)
            for client in idle:
                self._busy[client] = True
                env.process(self._client_job(r, client, inbox))
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
            self._record(r, opened, env.now, idle, len(updates),
                         [u.client_id for u in updates])

    def _client_job(self, r: int, client: int, inbox: simpy.Store):
        satellite = self.network.satellites[client]
        received = self.strategy.to_client(r, client)  # contents fixed at broadcast time
        for payload in received:
            yield self.network.relay(payload.kind, payload.nbytes, GROUND, satellite,
                                     round=r, client=client)
        yield self.env.timeout(self.schedule.training_duration_s)
        update = self.strategy.fit(r, client, received, self.client_data[client])
        uploads = []
        for payload in update.payloads:
            uploads += yield self.network.relay(payload.kind, payload.nbytes, satellite, GROUND,
                                                round=r, client=client)
        late = r in self._closed
        for record in uploads:
            record.tag["late"] = late
        self._busy[client] = False
        freed, self._client_freed = self._client_freed, self.env.event()
        freed.succeed()
        if not late:
            inbox.put(update)

    def _record(self, r: int, opened: float, closed: float, selected: list[int],
                received: int, clients: list[int] | None = None) -> None:
        report = accuracy_report(predict(self.strategy.global_model, self.test_data),
                                 self.test_data.labels.numpy(), self.classes)
        up = sum(t.nbytes for t in self.network.records
                 if t.status == "delivered" and t.src == GROUND)
        down = sum(t.nbytes for t in self.network.records
                   if t.status == "delivered" and t.dst == GROUND)
        record = RoundRecord(r, opened, closed, len(selected), received, report["accuracy"],
                             report["balanced_accuracy"], report["per_class_accuracy"],
                             up, down, clients or [])
        self.rounds.append(record)
        self.on_round(record, self.schedule)
