"""fl/batched.py against LocalTrainer.train run client by client: the same samples,
augmentations, BatchNorm statistics and SGD steps, so float64 agrees to rounding and
float32 within the tolerance the module states."""

from __future__ import annotations

import copy

import pytest
import torch

from orbitfl.fl.batched import BatchedFits, train_many
from orbitfl.fl.config import TrainConfig
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.executors import FitJob
from orbitfl.fl.fedavg import FedAvg, FedProx
from orbitfl.fl.logit_adjust import FedLA
from orbitfl.fl.models import ClassifierNet, build_model, small_cnn_backbone
from orbitfl.fl.strategy import FLConfig, Strategy
from orbitfl.fl.training import LocalTrainer

SIZES = [7, 33, 64, 65, 100, 1]  # short last batches, one skipped, a client with no step


def _small_cnn(classes: int, width: int) -> ClassifierNet:
    """The small CNN (``build_model("small-cnn")`` is width 32); narrower for float64."""
    return ClassifierNet(*small_cnn_backbone(3, width), classes)


def _setup(dtype: torch.dtype, sizes=SIZES, classes: int = 10, width: int = 32):
    torch.manual_seed(0)
    model = _small_cnn(classes, width).to(dtype)
    data = [ImageSet(torch.randn(n, 3, 16, 16, dtype=dtype), torch.randint(0, classes, (n,)))
            for n in sizes]
    starts = []
    for i in range(len(sizes)):  # different starting weights and running statistics
        other = _small_cnn(classes, width).to(dtype)
        state = other.state_dict()
        state["backbone.0.1.running_mean"] += 0.1 * i
        starts.append({k: v.clone() for k, v in state.items()})
    return model, data, starts


def _sequential(model, data, starts, config, **kwargs):
    trainer = LocalTrainer(copy.deepcopy(model), config)
    states, losses = [], []
    for i, (d, s) in enumerate(zip(data, starts)):
        trainer.model.load_state_dict(s)
        extra = {k: (v[i] if k == "prox_reference" else v) for k, v in kwargs.items()}
        losses.append(trainer.train(d, torch.Generator().manual_seed(100 + i), **extra))
        states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    return states, losses


def _generators(n):
    return [torch.Generator().manual_seed(100 + i) for i in range(n)]


def _max_diff(a, b):
    return max((x[k].double() - y[k].double()).abs().max().item() for x, y in zip(a, b) for k in x)




def test_float64_matches_sequential_to_rounding_with_augmentation():
    model, data, starts = _setup(torch.float64, width=8)
    config = TrainConfig(epochs=2, batch_size=32, augment=True)
    want, want_loss = _sequential(model, data, starts, config)
    got, got_loss = train_many(model, starts, data, _generators(len(data)), config)
    assert _max_diff(want, got) < 1e-10
    assert got_loss == pytest.approx(want_loss, abs=1e-6)  # both sum losses in float32
    for w, g in zip(want, got):  # batch counters exactly
        assert all(torch.equal(w[k], g[k]) for k in w if k.endswith("num_batches_tracked"))
    # the client of one sample has no step: unchanged, loss 0
    assert all(torch.equal(got[-1][k], starts[-1][k]) for k in starts[-1])
    assert got_loss[-1] == 0.0


def test_float32_within_stated_tolerance():
    model, data, starts = _setup(torch.float32)
    config = TrainConfig(epochs=1, batch_size=32)
    want, want_loss = _sequential(model, data, starts, config)
    got, got_loss = train_many(model, starts, data, _generators(len(data)), config, chunk=4)
    assert _max_diff(want, got) < 1e-4
    assert got_loss == pytest.approx(want_loss, abs=1e-5)


def test_fedprox_class_weights_and_logit_adjustment():
    model, data, starts = _setup(torch.float64, sizes=[7, 40], width=8)
    config = TrainConfig(epochs=1, batch_size=16)
    weights = torch.linspace(0.5, 2.0, 10, dtype=torch.float64)
    shift = torch.linspace(-1.0, 1.0, 10, dtype=torch.float64)
    references = [{k: v + 0.01 for k, v in s.items()} for s in starts]
    want, want_loss = _sequential(model, data, starts, config, class_weights=weights,
                                  prox_mu=0.5, prox_reference=references,
                                  logit_adjustment=shift)
    got, got_loss = train_many(model, starts, data, _generators(2), config, prox_mu=0.5,
                               prox_references=references, class_weights=weights,
                               logit_adjustment=shift)
    assert _max_diff(want, got) < 1e-10
    assert got_loss == pytest.approx(want_loss, abs=1e-6)  # both sum losses in float32


@pytest.mark.parametrize("strategy_class", [FedAvg, FedProx, FedLA])
def test_batched_fits_match_run_fit(strategy_class):
    model, data, _ = _setup(torch.float32, sizes=[20, 45, 3])
    config = FLConfig(rounds=1, train=TrainConfig(epochs=1, batch_size=16, augment=True))
    strategy = strategy_class(model, config)
    jobs = [FitJob(i, 2, c, strategy.to_client(2, c), {}) for i, c in enumerate([2, 0, 1])]
    got = BatchedFits(strategy, data).run(jobs)
    for job, (update, state) in zip(jobs, got):
        want, want_state = strategy.run_fit(2, job.client_id, job.received, data[job.client_id])
        assert (update.client_id, update.num_samples, update.base_version) == \
            (want.client_id, want.num_samples, want.base_version)
        assert update.train_loss == pytest.approx(want.train_loss, abs=1e-5)
        assert _max_diff([strategy.uploaded_state(want)], [strategy.uploaded_state(update)]) < 1e-4
        assert state == want_state


def test_rejects_what_needs_per_client_code():
    model, data, starts = _setup(torch.float32, sizes=[4])
    class Other(FedAvg):
        name = "other"

        def fit(self, *args):
            return Strategy.fit(self, *args)

    with pytest.raises(ValueError, match="strategy 'other' needs per-client code"):
        BatchedFits(Other(model, FLConfig(rounds=1)), data)
    ace = build_model("small-cnn", 10, ace={})
    with pytest.raises(ValueError, match="ACE .* needs per-client code"):
        train_many(ace, [ace.state_dict()], data, _generators(1), TrainConfig())
    seg = build_model("seg-unet", 3)
    with pytest.raises(ValueError, match="SegmentationNet needs per-client code"):
        train_many(seg, [seg.state_dict()], data, _generators(1), TrainConfig())
