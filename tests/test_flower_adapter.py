"""Flower's strategies and clients through ``fl/flower_adapter.py``: the adapter's
aggregation against Flower's own, driven directly on the same client updates, and what
crosses the links (sizes from shapes, FitIns.config)."""

import io
import math
import time
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from orbitfl.core.errors import InputError
from orbitfl.engine.checkpoint_check import _like
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.strategy import FLConfig

flwr = pytest.importorskip("flwr", reason="Flower is not installed (pip install "
                           "'orbitfl[flower]')")
from flwr.app import (  # noqa: E402
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.common import (  # noqa: E402
    Code,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.strategy import FedAdam, FedAvg, FedYogi  # noqa: E402

from orbitfl.fl.flower_adapter import FlowerStrategy, client_data  # noqa: E402
from orbitfl.fl.flower_servers import _proxy  # noqa: E402

CLIENTS, ROUNDS, PIXELS = 3, 3, 4
RETURNED: list[dict] = []  # what each client's fit returned: the updates Flower aggregates


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * PIXELS * PIXELS, 2))


def tiny_data(client: int) -> ImageSet:
    g = torch.Generator().manual_seed(100 + client)
    count = 6 + 4 * client  # unequal sizes: sample weighting matters
    return ImageSet(torch.randn(count, 3, PIXELS, PIXELS, generator=g),
                    torch.randint(0, 2, (count,), generator=g))


def _train(parameters: list, config, partition: int) -> tuple[list, int, float]:
    """What both kinds of client do: one SGD step on the orbitfl data of their node."""
    model = tiny_model()
    keys = list(model.state_dict())
    model.load_state_dict({k: torch.from_numpy(np.asarray(a)) for k, a in zip(keys, parameters)})
    data = client_data()
    optimiser = torch.optim.SGD(model.parameters(), lr=float(config.get("lr", 0.5)))
    order = torch.randperm(len(data))  # torch's global generator: seeded by orbitfl
    loss = nn.functional.cross_entropy(model(data.images[order]), data.labels[order])
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    arrays = [v.detach().numpy().copy() for v in model.state_dict().values()]
    RETURNED.append({"partition": partition, "arrays": arrays, "n": len(data),
                     "config": dict(config), "noise": float(np.random.rand())})
    return arrays, len(data), loss.item()


class Client(flwr.client.NumPyClient):
    """A plain Flower client: trains a copy of the model on the orbitfl data of its node."""

    def __init__(self, partition: int):
        self.partition = partition

    def fit(self, parameters, config):
        arrays, n, loss = _train(parameters, config, self.partition)
        return arrays, n, {"train_loss": loss}


def client_fn(context):
    return Client(int(context.node_config["partition-id"])).to_client()


app = ClientApp()  # the same client in the Message API


@app.train()
def train(msg: Message, context: Context) -> Message:
    state = msg.content["arrays"].to_torch_state_dict()
    config = dict(msg.content["config"])
    arrays, n, loss = _train(list(state.values()), config, context.node_config["partition-id"])
    RETURNED[-1]["context"] = (dict(context.node_config), dict(context.run_config))
    names = dict(zip(state, (torch.from_numpy(a) for a in arrays)))
    return Message(RecordDict({"arrays": ArrayRecord(names),
                               "metrics": MetricRecord({"train_loss": loss, "num-examples": n})}),
                   reply_to=msg)


def _round(adapter: FlowerStrategy, round_index: int, states: dict) -> list[dict]:
    """One synchronous round through the adapter, every client in time (ideal links)."""
    RETURNED.clear()
    updates = []
    for c in range(CLIENTS):
        received = adapter.to_client(round_index, c)
        update, states[c] = adapter.run_fit(round_index, c, received, tiny_data(c), states.get(c))
        updates.append(update)
    adapter.aggregate(round_index, updates)
    return list(RETURNED)


def _weights(adapter: FlowerStrategy) -> list[np.ndarray]:
    return [v.numpy() for v in adapter.global_model.state_dict().values()]


def _flower_aggregate(reference, round_index: int, returned: list[dict]) -> list[np.ndarray]:
    """Flower's own server step on the same client results (FedAdam's and FedYogi's
    configure_fit keeps no state)."""
    results = [(_proxy(r["partition"]), FitRes(Status(Code.OK, ""),
                                                ndarrays_to_parameters(r["arrays"]), r["n"], {}))
               for r in returned]
    parameters, _ = reference["strategy"].aggregate_fit(round_index, results, [])
    reference["parameters"] = parameters
    return parameters_to_ndarrays(parameters)


@pytest.mark.parametrize("flower_class, client", [(FedAdam, client_fn), (FedYogi, client_fn),
                                                  (FedAdam, app)])
def test_adapter_aggregates_as_flower_does_on_the_same_updates(flower_class, client):
    options = {"eta": 0.05, "eta_l": 0.5, "beta_1": 0.8}
    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=ROUNDS, seed=4),
                             strategy=flower_class, strategy_options=options,
                             client_app=client)
    start = [a.copy() for a in _weights(adapter)]
    reference = {"parameters": ndarrays_to_parameters(start)}
    reference["strategy"] = flower_class(initial_parameters=reference["parameters"], **options)
    states: dict = {}
    for r in range(1, ROUNDS + 1):
        returned = _round(adapter, r, states)
        assert sorted(x["partition"] for x in returned) == list(range(CLIENTS))
        theirs = _flower_aggregate(reference, r, returned)
        ours = _weights(adapter)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # the rounds moved the model, and FedAdam's server step is not the plain mean
    assert max(float(np.abs(a - b).max()) for a, b in zip(_weights(adapter), start)) > 1e-3
    plain = [sum(r["arrays"][i] * r["n"] for r in returned) / sum(r["n"] for r in returned)
             for i in range(len(start))]
    assert not all(np.allclose(a, b, atol=1e-5) for a, b in zip(_weights(adapter), plain))


def test_fedavg_through_the_adapter_is_the_sample_weighted_mean():
    """Hand-computed: Flower's FedAvg through the adapter gives sum(n_i w_i) / sum(n_i)."""
    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=1), strategy=FedAvg,
                             client_app=client_fn)
    returned = _round(adapter, 1, {})
    total = sum(r["n"] for r in returned)
    assert [r["n"] for r in returned] == [6, 10, 14]
    for i, ours in enumerate(_weights(adapter)):
        mean = sum(r["arrays"][i].astype(np.float64) * r["n"] for r in returned) / total
        np.testing.assert_allclose(ours, mean, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, options", [
    ("FedAvgM", {"server_momentum": 0.5}), ("FedAdagrad", {}), ("FedTrimmedAvg", {"beta": 0.0}),
    ("QFedAvg", {"evaluate_fn": lambda r, arrays, config: (0.5, {})}), ("FedMedian", {}),
])
def test_other_flower_strategies_run_unmodified(name, options):
    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=1), client_app=client_fn,
                             strategy=f"flwr.server.strategy:{name}", strategy_options=options)
    start = [a.copy() for a in _weights(adapter)]
    returned = _round(adapter, 1, {})
    ours = _weights(adapter)
    assert all(np.isfinite(a).all() for a in ours)
    assert max(float(np.abs(a - b).max()) for a, b in zip(ours, start)) > 1e-4
    if name == "FedMedian":  # hand-computed: the element-wise median of the three clients
        for i, a in enumerate(ours):
            np.testing.assert_allclose(a, np.median([r["arrays"][i] for r in returned], axis=0),
                                       rtol=1e-6)


def test_sizes_come_from_shapes_and_the_strategy_config_crosses_to_the_client():
    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=1), client_app=client_fn,
                             strategy="flwr.server.strategy:FedProx",
                             strategy_options={"proximal_mu": 0.25,
                                               "on_fit_config_fn": lambda r: {"lr": 0.125}})
    received = adapter.to_client(1, 0)
    kinds = [p.kind for p in received]
    assert kinds == ["weights", "control", "control"]
    update, _ = adapter.run_fit(1, 0, received, tiny_data(0), {})
    assert RETURNED[-1]["config"] == {"lr": 0.125, "proximal_mu": 0.25}
    # a 64-byte message header, per tensor 16 bytes + 4 per dimension + float32 values:
    # weight (2, 48) and bias (2,)
    expected = 64 + (16 + 2 * 4 + 96 * 4) + (16 + 4 + 2 * 4)
    assert [p.nbytes for p in update.payloads] == [expected]
    assert adapter.upload_sizes(0)[0].nbytes == expected == received[0].nbytes
    assert update.num_samples == 6 and math.isfinite(update.train_loss)


def test_a_client_app_gets_the_config_the_round_and_its_node():
    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=1), client_app="test_flower_adapter:app",
                             strategy="flwr.server.strategy:FedAvg", run_config={"epochs": 2},
                             strategy_options={"on_fit_config_fn": lambda r: {"lr": 0.25}},
                             num_partitions=CLIENTS)
    update, _ = adapter.run_fit(3, 1, adapter.to_client(3, 1), tiny_data(1), {})
    assert RETURNED[-1]["config"] == {"lr": 0.25, "server-round": 3}
    assert RETURNED[-1]["context"] == ({"partition-id": 1, "num-partitions": 3}, {"epochs": 2})
    assert update.num_samples == 10 and update.diagnostics["flower_metrics"].keys() == \
        {"train_loss"}


def test_the_seed_decides_numpy_and_python_randomness_in_a_client():
    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=1, seed=1), strategy=FedAvg,
                             client_app=client_fn)
    draws = []
    for _ in range(2):
        np.random.seed(None)
        adapter.run_fit(1, 0, adapter.to_client(1, 0), tiny_data(0), {})
        draws.append(RETURNED[-1]["noise"])
    adapter.run_fit(1, 1, adapter.to_client(1, 1), tiny_data(1), {})
    assert draws[0] == draws[1] != RETURNED[-1]["noise"]


def test_a_checkpoint_carries_the_flower_strategy_state():
    """FedAdam's moments survive a checkpoint: a resumed adapter's next round is the one
    an uninterrupted adapter gives."""
    make = lambda: FlowerStrategy(tiny_model(), FLConfig(rounds=3), strategy=FedAdam,  # noqa: E731
                                  strategy_options={"eta": 0.05}, client_app=client_fn)
    live, states = make(), {}
    for r in (1, 2):
        _round(live, r, states)
    buffer = io.BytesIO()
    torch.save(live.state_dict(), buffer)
    resumed = make()
    # what orbitfl checks before resuming: the keys of a freshly built strategy
    assert list(_like(live.state_dict(), resumed.state_dict(), "strategy")) == []
    assert live.state_dict()["flower"]["m_t"] is not None is resumed.state_dict()["flower"]["m_t"]
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    resumed_states = {c: dict(s) for c, s in states.items()}
    _round(live, 3, states)
    _round(resumed, 3, resumed_states)
    for a, b in zip(_weights(live), _weights(resumed)):
        np.testing.assert_array_equal(a, b)


def test_the_adapter_travels_to_workers_without_its_server_half():
    import pickle

    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=1), strategy=FedAvg,
                             client_app="test_flower_adapter:client_fn",
                             strategy_options={"evaluate_fn": lambda *a: None})
    worker = pickle.loads(pickle.dumps(adapter))
    update, _ = worker.run_fit(1, 2, adapter.to_client(1, 2), tiny_data(2), {})
    assert update.num_samples == 14
    with pytest.raises(RuntimeError, match="mission process"):
        worker.aggregate(1, [update])


@pytest.mark.parametrize("options, message", [
    ({"strategy": "flwr.server.strategy:NoSuch"}, "has no attribute 'NoSuch'"),
    ({"strategy": "no_such_module:FedAvg"}, "cannot import 'no_such_module'"),
    ({"strategy": "FedAvg"}, "not of the form 'package.module:name'"),
    ({"strategy": "flwr.common:FitIns"}, "is not a Flower strategy"),
    ({"strategy_options": {"no_such_option": 1}}, "unexpected keyword argument"),
    ({"client_app": "test_flower_adapter:nothing"}, "has no attribute 'nothing'"),
    ({"client_app": "flwr:__version__"}, "is neither a client_fn"),
    ({"client_app": ClientApp(client_fn=client_fn)}, "give that client_fn"),
])
def test_bad_references_and_options_are_one_line_errors(options, message):
    arguments = {"strategy": "flwr.server.strategy:FedAvg", "client_app": client_fn, **options}
    with pytest.raises(InputError, match=message) as error:
        FlowerStrategy(tiny_model(), FLConfig(rounds=1), **arguments)
    assert "\n" not in str(error.value)


def test_a_client_returning_other_shapes_is_named():
    def wrong(context):
        class Wrong(flwr.client.NumPyClient):
            def fit(self, parameters, config):
                return [np.zeros((3, 3), np.float32), parameters[1]], 1, {}
        return Wrong().to_client()

    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=1), strategy=FedAvg,
                             client_app=wrong)
    with pytest.raises(InputError, match=r"client 0's returned arrays: array 0 \(1.weight\) "
                                         r"has shape \(3, 3\), the model's is \(2, 48\)"):
        adapter.run_fit(1, 0, adapter.to_client(1, 0), tiny_data(0), {})


def test_a_local_pool_gives_the_serial_fits():
    """The client half in worker processes (the client_fn by reference): the same updates,
    bit for bit, as in this process."""
    from orbitfl.fl.config import Execution
    from orbitfl.fl.executors import FitJob, make_executor

    def fits(execution: Execution) -> list:
        adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=1, seed=2), strategy=FedAvg,
                                 client_app="test_flower_adapter:client_fn")
        data = [tiny_data(c) for c in range(CLIENTS)]
        with make_executor(execution, adapter, data) as executor:
            pending = [executor.submit(FitJob(c, 1, c, adapter.to_client(1, c), {}))
                       for c in range(CLIENTS)]
            return [p.result()[0] for p in pending]

    serial, pooled = fits(Execution("serial")), fits(Execution("local", 2))
    for a, b in zip(serial, pooled):
        assert (a.num_samples, a.train_loss) == (b.num_samples, b.train_loss)
        for key, tensor in a.payloads[0].tensors.items():
            assert torch.equal(tensor, b.payloads[0].tensors[key])


# -- the Message API strategies (flwr.serverapp.strategy) ---------------------------------
class _AllNodes:
    """Flower's view of a round where every client is connected (the reference)."""

    def get_node_ids(self):
        return list(range(CLIENTS))


def _reply(round_index: int, names: list, returned: dict) -> Message:
    from flwr.app import DEFAULT_TTL, MessageType, Metadata

    arrays = ArrayRecord(OrderedDict((k, torch.from_numpy(a))
                                     for k, a in zip(names, returned["arrays"])))
    content = RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples":
                                                                      returned["n"]})})
    return Message(content=content, metadata=Metadata(
        run_id=0, message_id="", src_node_id=returned["partition"], dst_node_id=0,
        reply_to_message_id="", group_id=str(round_index), created_at=time.time(),
        ttl=DEFAULT_TTL, message_type=MessageType.TRAIN))


@pytest.mark.parametrize("client", [app, client_fn], ids=["client-app", "client-fn"])
def test_a_message_api_fedadam_aggregates_as_flower_does(client, monkeypatch):
    from flwr.serverapp.strategy import FedAdam as MessageFedAdam
    from flwr.supercore.task_identity import TaskIdentity

    options = {"eta": 0.05, "eta_l": 0.5, "beta_1": 0.8}
    adapter = FlowerStrategy(tiny_model(), FLConfig(rounds=ROUNDS, seed=4), client_app=client,
                             strategy="flwr.serverapp.strategy:FedAdam",
                             strategy_options=options)
    names = list(adapter.global_model.state_dict())
    reference, current = MessageFedAdam(**options), [a.copy() for a in _weights(adapter)]
    for name in ("_run_id", "_node_id", "_task_id"):  # what Flower's runtime sets
        monkeypatch.setattr(TaskIdentity, name, 0)
    states: dict = {}
    for r in range(1, ROUNDS + 1):
        returned = _round(adapter, r, states)
        assert all(x["config"] == {"server-round": r} for x in returned)
        reference.configure_train(r, ArrayRecord(OrderedDict(
            (k, torch.from_numpy(a)) for k, a in zip(names, current))), ConfigRecord(),
            _AllNodes())
        arrays, _ = reference.aggregate_train(r, [_reply(r, names, x) for x in returned])
        current = [arrays[k].numpy() for k in names]
        for ours, theirs in zip(_weights(adapter), current):
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    assert not all(np.allclose(a, b) for a, b in zip(_weights(adapter),
                                                     _weights(FlowerStrategy(
                                                         tiny_model(), FLConfig(rounds=1),
                                                         strategy=FedAvg,
                                                         client_app=client_fn))))


def test_a_message_api_strategy_state_survives_a_checkpoint():
    make = lambda: FlowerStrategy(tiny_model(), FLConfig(rounds=3), client_app=app,  # noqa: E731
                                  strategy="flwr.serverapp.strategy:FedYogi",
                                  strategy_options={"eta": 0.05})
    live, states = make(), {}
    for r in (1, 2):
        _round(live, r, states)
    from flwr.supercore.task_identity import TaskIdentity
    assert TaskIdentity._run_id is None  # Flower's process identity is left as it was
    buffer = io.BytesIO()
    torch.save(live.state_dict(), buffer)
    resumed = make()
    assert list(_like(live.state_dict(), resumed.state_dict(), "strategy")) == []
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    resumed_states = {c: dict(s) for c, s in states.items()}
    _round(live, 3, states)
    _round(resumed, 3, resumed_states)
    for a, b in zip(_weights(live), _weights(resumed)):
        np.testing.assert_array_equal(a, b)
