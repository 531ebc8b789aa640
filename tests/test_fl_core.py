"""FedAvg arithmetic, payload sizes and partitioners against hand computations."""

import numpy as np
import pytest
import torch

from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.fedavg import FedAvg
from orbitfl.fl.models import build_model
from orbitfl.fl.partition import dirichlet_partition, iid_partition, long_tail_counts
from orbitfl.fl.payloads import (
    BYTES_PER_DIMENSION,
    MESSAGE_HEADER_BYTES,
    TENSOR_HEADER_BYTES,
    Payload,
    weights_payload,
)
from orbitfl.fl.strategy import ClientUpdate, FLConfig, weighted_average
from orbitfl.fl.training import TrainConfig


def test_weighted_average_is_the_exact_sample_weighted_mean():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([4.0, -2.0]), "n": torch.tensor(5)}
    out = weighted_average([a, b], [1, 3])
    assert torch.equal(out["w"], torch.tensor([(1 + 12) / 4, (2 - 6) / 4]))
    assert out["n"].item() == 5 and out["n"].dtype == torch.int64


def test_fedavg_aggregate_equals_weighted_mean_of_client_models():
    torch.manual_seed(0)
    strategy = FedAvg(build_model("small-cnn", 4), FLConfig(rounds=1, seed=1))
    states, sizes = [], [10, 30, 60]
    for _ in sizes:
        states.append({k: v + torch.randn_like(v) if v.is_floating_point() else v
                       for k, v in strategy.global_model.state_dict().items()})
    updates = [ClientUpdate(i, 1, n, [Payload.encode("weights", s)], 0.0)
               for i, (s, n) in enumerate(zip(states, sizes))]
    strategy.aggregate(1, updates)
    for key, value in strategy.global_model.state_dict().items():
        if value.is_floating_point():
            expected = sum(s[key].double() * n for s, n in zip(states, sizes)) / sum(sizes)
            torch.testing.assert_close(value, expected.float(), rtol=0, atol=1e-6)


def test_fedavg_client_trains_from_the_received_weights():
    torch.manual_seed(0)
    strategy = FedAvg(build_model("small-cnn", 3),
                      FLConfig(rounds=1, train=TrainConfig(epochs=1, batch_size=8), seed=1))
    data = ImageSet(torch.randn(32, 3, 16, 16), torch.randint(0, 3, (32,)))
    received = strategy.to_client(1, 0)
    assert [p.kind for p in received] == ["weights", "control"]
    update, _ = strategy.fit(1, 0, received, data, {})
    assert update.num_samples == 32
    sent = received[0].tensors
    trained = update.payloads[0].tensors
    assert any(not torch.equal(sent[k], trained[k]) for k in sent)
    # Same (seed, round, client) -> same result, whatever ran in between.
    again, _ = strategy.fit(1, 0, received, data, {})
    for k in trained:
        torch.testing.assert_close(trained[k], again.payloads[0].tensors[k])


def test_the_broadcast_is_encoded_once_and_again_whenever_the_model_changes():
    """Clients starting from one version share its payloads; a global model changed by any
    route (an aggregation, a direct load_state_dict, an in-place write, a replaced
    buffer) is encoded afresh, and what was already sent keeps the old values."""
    torch.manual_seed(0)
    strategy = FedAvg(build_model("small-cnn", 3), FLConfig(rounds=2))
    first = strategy.to_client(1, 0)
    assert strategy.to_client(1, 1)[0] is first[0]
    model = strategy.global_model
    name, weight = next(iter(model.state_dict().items()))
    old = first[0].tensors[name].clone()

    def changed(change) -> bool:
        before = strategy.to_client(1, 0)[0]
        change()
        after = strategy.to_client(1, 0)[0]
        return after is not before and torch.equal(after.tensors[name],
                                                    model.state_dict()[name])

    assert changed(lambda: model.load_state_dict({**model.state_dict(), name: weight + 1}))
    with torch.no_grad():
        assert changed(lambda: next(model.parameters()).mul_(2))
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert changed(lambda: setattr(bn, "running_mean", torch.ones_like(bn.running_mean)))
    assert torch.equal(first[0].tensors[name], old)


def test_payload_size_is_exact():
    payload = Payload.encode("weights", {"a": torch.zeros(3, 4),
                                         "b": torch.zeros(5, dtype=torch.float16)})
    expected = MESSAGE_HEADER_BYTES + (TENSOR_HEADER_BYTES + 2 * BYTES_PER_DIMENSION + 12 * 4) \
        + (TENSOR_HEADER_BYTES + 1 * BYTES_PER_DIMENSION + 5 * 2)
    assert payload.nbytes == expected
    model = build_model("small-cnn", 10)
    state = model.state_dict()
    data_bytes = sum(v.numel() * v.element_size() for v in state.values())
    assert weights_payload(model).nbytes == MESSAGE_HEADER_BYTES + data_bytes + sum(
        TENSOR_HEADER_BYTES + BYTES_PER_DIMENSION * v.dim() for v in state.values())


def test_long_tail_counts_follow_the_formula():
    counts = long_tail_counts(500, 10, 100.0, np.random.default_rng(3))
    expected = sorted((np.floor(500 * 100.0 ** (-np.arange(10) / 9))).astype(int), reverse=True)
    assert sorted(counts, reverse=True) == expected
    assert counts.max() == 500 and counts.min() == 5


def test_dirichlet_partition_is_complete_disjoint_and_skewed_by_alpha():
    labels = np.repeat(np.arange(10), 200)

    def mean_max_share(alpha: float) -> float:
        parts = dirichlet_partition(labels, 10, alpha, np.random.default_rng(0))
        joined = np.sort(np.concatenate(parts))
        assert np.array_equal(joined, np.arange(len(labels)))  # every sample exactly once
        assert min(len(p) for p in parts) >= 10
        return np.mean([np.bincount(labels[p], minlength=10).max() / len(p) for p in parts])

    assert mean_max_share(0.1) > mean_max_share(1.0) + 0.2 > mean_max_share(100.0) + 0.2


def test_iid_partition_balances_sizes():
    parts = iid_partition(103, 4, np.random.default_rng(0))
    assert sorted(len(p) for p in parts) == [25, 26, 26, 26]
    assert len(np.unique(np.concatenate(parts))) == 103


def test_mix_weighted_accuracy_is_the_accuracy_on_the_clients_own_mix():
    """A test set drawn with the client's mix (3:1:0) scored class by class gives exactly
    the mix-weighted per-class accuracy of the balanced test set."""
    from orbitfl.fl.metrics import classification_report, mix_weighted_accuracy

    labels = np.repeat([0, 1, 2], 4)                           # balanced: 4 per class
    predicted = np.array([0, 0, 0, 1, 1, 1, 0, 0, 2, 2, 2, 2])  # 3/4, 2/4, 4/4 right
    per_class = classification_report(predicted, labels, 3)["per_class_accuracy"]
    assert mix_weighted_accuracy(per_class, [30, 10, 0]) == pytest.approx(
        (30 * 0.75 + 10 * 0.5) / 40)
    # The same as scoring a test set drawn 3:1 from those per-class accuracies directly.
    own = np.concatenate([np.repeat(labels[:4], 3), labels[4:8]])
    own_pred = np.concatenate([np.repeat(predicted[:4], 3), predicted[4:8]])
    assert mix_weighted_accuracy(per_class, [30, 10, 0]) == pytest.approx(
        float((own == own_pred).mean()))


def test_imbalance_factor_of_a_long_tail_and_of_an_empty_class():
    from orbitfl.fl.metrics import imbalance_factor

    assert imbalance_factor([500, 50, 5]) == 100.0
    assert imbalance_factor([915, 4, 0]) == float("inf")


def test_evaluation_batches_do_not_change_the_logits():
    """``predict`` evaluates in batches of 128 on a CPU (faster than 512): with one thread,
    as runs train and evaluate, an image's logits agree in any batch of two or more to
    float32 rounding (bit for bit on some CPUs; on AVX-512 Xeons a batch under 8 differs in
    the last bit), and the predictions are the same; a batch of one is never made."""
    from orbitfl.fl.training import batches, predict

    assert batches(257, 128) == [slice(0, 128), slice(128, 257)]  # no lone last image
    assert batches(256, 128) == [slice(0, 128), slice(128, 256)]
    assert batches(1, 128) == [slice(0, 1)] and batches(0, 128) == []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = build_model("small-cnn", 5, {"dim": 8}).eval()
        images = torch.randn(257, 3, 16, 16)
        with torch.no_grad():
            whole = model(images)
            for size in (2, 7, 128):
                parts = torch.cat([model(images[p]) for p in batches(257, size)])
                torch.testing.assert_close(parts, whole, rtol=0, atol=1e-6, msg=str(size))
        data = ImageSet(images, torch.zeros(257, dtype=torch.long))
        assert np.array_equal(predict(model, data), whole.argmax(1).numpy())
        assert np.array_equal(predict(model, data, batch_size=512), predict(model, data))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name, ace", [("tiny-cnn", None), ("small-cnn", {"dim": 8}),
                                       ("seg-unet", {"dim": 8})])
def test_models_compute_on_channels_last_activations_as_on_the_default_layout(name, ace):
    """``fast_layout`` (fl/models.py): the convolutions see channels-last activations, the
    parameters (what travels and is averaged) keep the default layout, and the logits are
    the default layout's to float32 rounding."""
    from unittest import mock

    from orbitfl.fl import models

    torch.manual_seed(0)
    model = build_model(name, 5, ace).eval()
    seen = []
    first_convolution = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    first_convolution.register_forward_hook(lambda _m, _i, out: seen.append(out))
    images = torch.randn(6, 3, 16, 16)
    with torch.no_grad():
        fast = model(images)
        with mock.patch.object(models, "fast_layout", lambda x: x):
            default = model(images)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert seen[1].is_contiguous() and not seen[1].is_contiguous(
        memory_format=torch.channels_last)
    assert all(p.is_contiguous() for p in model.parameters())
    torch.testing.assert_close(fast, default, rtol=0, atol=1e-5)
