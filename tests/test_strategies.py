"""SAFE's parts and the baselines against hand computations and expected behaviour."""

import math

import numpy as np
import pytest
import torch

from orbitfl.fl import dmr
from orbitfl.fl.cka import gram_cka, linear_cka
from orbitfl.fl.compression import Codec
from orbitfl.fl.config import CompressionConfig, FedBuffConfig
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.fedbuff import FedBuff, staleness_weight
from orbitfl.fl.federation import DataSpec, build_federation
from orbitfl.fl.metrics import classification_report, mean_iou, shot_groups
from orbitfl.fl.models import ace_options, build_model
from orbitfl.fl.payloads import Payload
from orbitfl.fl.registry import make_strategy
from orbitfl.fl.safe import Safe
from orbitfl.fl.strategy import ClientUpdate, FLConfig, SafeConfig
from orbitfl.fl.training import TrainConfig, predict, train_local

BUFFER = FedBuffConfig(server_lr=1.0, staleness_exponent=0.5)


def topk(ratio: float) -> CompressionConfig:
    return CompressionConfig(to_ground="topk", topk_ratio=ratio)


# -- CKA ---------------------------------------------------------------------------------
def test_cka_identity_invariances_and_a_hand_example():
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(20, 6, generator=rng)
    assert linear_cka(x, x) == pytest.approx(1.0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=rng))
    assert linear_cka(x, 3.7 * x @ q) == pytest.approx(1.0)       # orthogonal + isotropic scale
    assert linear_cka(x, x * torch.tensor([1, 5, 1, 1, 1, 1.])) < 0.99  # not anisotropic
    # Hand-computed: X = [[1,0],[0,1],[0,0]], Y = [[1],[0],[0]]. Centred: column means
    # X (1/3, 1/3), Y (1/3). ||Y^T X||^2 = (2/3)^2 + (1/3)^2 = 5/9; ||X^T X||_F = sqrt(2/3
    # squared twice + 1/3 squared twice... ) computed: X^T X = [[2/3,-1/3],[-1/3,2/3]]
    # -> ||.||_F = sqrt(4/9 + 1/9 + 1/9 + 4/9) = sqrt(10)/3; Y^T Y = 2/3.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    y = torch.tensor([[1.0], [0.0], [0.0]])
    expected = (5 / 9) / (math.sqrt(10) / 3 * 2 / 3)
    assert linear_cka(x, y) == pytest.approx(expected)
    assert gram_cka(x @ x.T, y @ y.T) == pytest.approx(expected)


# -- DMR ---------------------------------------------------------------------------------
def test_dmr_factors_hit_their_endpoints_and_are_monotone():
    s = [dmr.local_factor(r, 10) for r in range(1, 13)]
    assert s[0] == 0.0 and s[9] == pytest.approx(1.0) and s[11] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(s, s[1:]))
    assert dmr.global_factor(1, 10) == 1.0 and dmr.global_factor(10, 10) == pytest.approx(0.0)
    assert dmr.local_factor(5, 9) == pytest.approx(0.5)  # p = 4/8: the midpoint


# -- compression -------------------------------------------------------------------------
def test_codec_sizes_and_round_trip_errors():
    t = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    n = t.numel()
    for name, size, error in [("fp32", 4 * n, 0.0), ("fp16", 2 * n, 1e-3),
                              ("int8", n + 4, t.abs().max() / 127 / 2),
                              ("int8-channel", n + 4 * 64, t.abs().amax(1).max() / 127 / 2)]:
        back, nbytes = Codec(name).round_trip(t)
        assert nbytes == size, name
        assert float((back - t).abs().max()) <= float(error) + 1e-6, name
    back, nbytes = Codec("topk", 0.1).round_trip(t)
    assert nbytes == 64 * (4 + 2) and int((back != 0).sum()) == 64
    kept = back != 0
    assert torch.equal(back[kept], t[kept])
    assert t[~kept].abs().max() <= t[kept].abs().min()
    ints = torch.arange(5)
    assert torch.equal(Codec("int8").round_trip(ints)[0], ints)  # integers travel raw


def test_a_state_payload_never_shares_memory_with_the_state():
    """Payloads are built from live models without a copy first: writing into the model
    afterwards (the next fit, the next aggregation) must leave the payload as sent, for
    every codec and dtype (an fp16 tensor under the fp16 codec included)."""
    from orbitfl.fl.payloads import state_payload

    g = torch.Generator().manual_seed(1)
    state = {"w": torch.randn(6, 5, generator=g), "h": torch.randn(7, generator=g).half(),
             "n": torch.tensor(3)}
    for name in ("fp32", "fp16", "int8", "int8-channel", "topk"):
        payload = state_payload("weights", state, Codec(name, 0.5))
        sent = {k: v.clone() for k, v in payload.tensors.items()}
        for tensor in state.values():
            tensor.add_(1)
        assert all(torch.equal(payload.tensors[k], sent[k]) for k in sent), name


def test_payload_sizes_follow_the_codec():
    state = {"w": torch.randn(100, 10), "n": torch.tensor(7)}
    raw = Payload.encode("weights", state)
    half = Payload.encode("weights", state, Codec("fp16"))
    assert raw.raw_nbytes == raw.nbytes == half.raw_nbytes
    assert raw.nbytes - half.nbytes == 1000 * 2
    assert not torch.equal(half.tensors["w"], state["w"])  # the receiver gets the fp16 values


def test_topk_error_feedback_carries_what_was_dropped():
    torch.manual_seed(0)
    model = build_model("small-cnn", 3)
    strategy = make_strategy("fedavg", model, FLConfig(rounds=2, compression=topk(0.05)))
    base = {k: v.clone() for k, v in model.state_dict().items()}
    trained = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
               for k, v in base.items()}
    first, state = strategy.upload(trained, base, {})
    residual = state["residual"]           # the client's memory travels in its state
    delta = first[0].tensors
    for k in delta:
        torch.testing.assert_close(delta[k] + residual[k], trained[k] - base[k])
    second = strategy.upload(trained, base, state)[0][0].tensors  # added next time
    assert any(not torch.equal(second[k], delta[k]) for k in delta)
    again = strategy.upload(trained, base, {})[0][0].tensors   # no memory kept elsewhere
    assert all(torch.equal(again[k], delta[k]) for k in delta)


def test_topk_sparsifies_parameters_only_and_buffers_arrive_exact():
    """A sparse delta of BatchNorm's running variance drives it below zero (model at chance)."""
    torch.manual_seed(0)
    model = build_model("small-cnn", 3)
    strategy = make_strategy("fedavg", model, FLConfig(rounds=2, compression=topk(0.05)))
    base = {k: v.clone() for k, v in model.state_dict().items()}
    trained = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v + 1
               for k, v in base.items()}
    (delta, whole), _ = strategy.upload(trained, base, {})
    assert set(delta.tensors) == {name for name, _ in model.named_parameters()}
    assert set(whole.tensors) == {name for name, _ in model.named_buffers()}
    update = ClientUpdate(0, 1, 10, [delta, whole], 0.0, 0)
    received = strategy.uploaded_state(update)
    for name, _ in model.named_buffers():
        assert torch.equal(received[name], trained[name]), name


@pytest.mark.parametrize("strategy_name, codec", [("fedavg", Codec("fp32")),
                                                   ("fedavg", Codec("int8-channel")),
                                                   ("fedavg", Codec("topk", 0.05)),
                                                   ("safe", Codec("topk", 0.1)),
                                                   ("safe", Codec("fp16"))])
def test_predicted_upload_sizes_are_what_the_fit_uploads(strategy_name, codec):
    """The mission simulates an upload with ``upload_sizes`` before the fit has finished:
    it must be exactly what the fit then sends (kinds, wire and raw bytes), every round."""
    gen = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randn(24, 3, 16, 16, generator=gen),
                    torch.randint(0, 3, (24,), generator=gen))
    torch.manual_seed(0)
    ace = {"dim": 16} if strategy_name == "safe" else None
    strategy = make_strategy(strategy_name, build_model("small-cnn", 3, ace),
                             FLConfig(rounds=2, safe=SafeConfig(ace_dim=16),
                                      compression=CompressionConfig(to_ground=codec.name,
                                                                    topk_ratio=codec.ratio)),
                             ImageSet(data.images[:6], data.labels[:6]))
    state: dict = {}
    for r in (1, 2):
        update, state = strategy.run_fit(r, 0, strategy.to_client(r, 0), data, state)
        real = [(p.kind, p.nbytes, p.raw_nbytes) for p in update.payloads]
        assert real == [(p.kind, p.nbytes, p.raw_nbytes) for p in strategy.upload_sizes(0)]
        strategy.aggregate(r, [update])


def test_a_fit_is_a_pure_function_of_its_inputs(long_tail):
    """Same round, client, received payloads, data and state: the same update and new
    state, whatever the strategy object trained in between; the given state is not
    changed (a fit may run in another process and its input be reused)."""
    torch.manual_seed(0)
    model = build_model("small-cnn", long_tail.classes, {"dim": 16})
    config = FLConfig(rounds=3, train=TrainConfig(epochs=1), seed=4,
                      compression=topk(0.1), safe=SafeConfig(ace_dim=16))
    strategy = make_strategy("safe", model, config, long_tail.ses)
    data = long_tail.clients[0]
    _, state = strategy.run_fit(1, 0, strategy.to_client(1, 0), data, {})
    strategy.aggregate(1, [strategy.run_fit(1, 1, strategy.to_client(1, 1),
                                            long_tail.clients[1], {})[0]])
    received = strategy.to_client(2, 0)
    before = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in state.items()
              if k != "residual"}
    first = strategy.run_fit(2, 0, received, data, state)
    strategy.run_fit(2, 1, strategy.to_client(2, 1), long_tail.clients[1], {})  # in between
    second = strategy.run_fit(2, 0, received, data, state)
    assert set(first[1]) == {"residual", "personal", "ses", "divergences"}
    for (u, s), (v, t) in [(first, second)]:
        for p, q in zip(u.payloads, v.payloads):
            assert all(torch.equal(p.tensors[k], q.tensors[k]) for k in p.tensors)
        assert all(torch.equal(s["personal"][k], t["personal"][k]) for k in s["personal"])
        assert s["divergences"] == t["divergences"] and u.diagnostics == v.diagnostics
    assert len(first[1]["divergences"]) == 1 and "divergences" not in before
    assert all(torch.equal(before["personal"][k], state["personal"][k])
               for k in before["personal"])


# -- FedAvg / FedBuff --------------------------------------------------------------------
def test_fedbuff_staleness_weights_follow_their_formula():
    assert staleness_weight(0, 0.5) == 1.0
    assert staleness_weight(3, 0.5) == pytest.approx(0.5)
    torch.manual_seed(0)
    model = build_model("small-cnn", 3)
    strategy = FedBuff(model, FLConfig(rounds=3, fedbuff=BUFFER))
    base = {k: v.clone() for k, v in model.state_dict().items()}
    strategy.version = 3                 # three versions have been published meanwhile
    strategy._versions[3] = base
    key = "classifier.bias"
    moved = {k: v.clone() for k, v in base.items()}
    moved[key] = base[key] + 1.0
    fresh = ClientUpdate(0, 1, 10, [Payload.encode("weights", moved)], 0.0, base_version=3)
    stale = ClientUpdate(1, 1, 30, [Payload.encode("weights", moved)], 0.0, base_version=0)
    strategy._versions[0] = base
    strategy.aggregate(1, [fresh, stale])
    expected = base[key] + 1.0 * (10 / 40 * 1.0 + 30 / 40 * 0.5)
    torch.testing.assert_close(model.state_dict()[key], expected)
    assert strategy.last_staleness == [0, 3]


def test_fedbuff_takes_a_straggler_based_sixty_versions_back():
    """A satellite waiting long for its first pass reports on version 0 after 60
    aggregations: its update is weighted by (1 + 60)^-a, and the server keeps only the
    versions an outstanding client can still report on (here the straggler's and the
    current one), not a window of the last 50."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)                # any model: only the server half runs
    strategy = FedBuff(model, FLConfig(rounds=61, fedbuff=BUFFER))
    base = {k: v.clone() for k, v in model.state_dict().items()}
    straggler_got = strategy.to_client(1, 0)
    for r in range(1, 61):                       # a punctual client moves nothing 60 times
        got, version = strategy.received_state(strategy.to_client(r, 1))
        strategy.aggregate(r, [ClientUpdate(1, r, 10, [Payload.encode("weights", got)], 0.0,
                                            base_version=version)])
    assert strategy.version == 60 and sorted(strategy._versions) == [0, 60]
    key = "bias"
    moved, version = strategy.received_state(straggler_got)
    moved[key] = moved[key] + 1.0
    strategy.aggregate(61, [ClientUpdate(0, 1, 10, [Payload.encode("weights", moved)], 0.0,
                                         base_version=version)])
    assert strategy.last_staleness == [60]
    torch.testing.assert_close(model.state_dict()[key], base[key] + 61 ** -0.5)
    assert sorted(strategy._versions) == [61]    # nobody is out on an older model


# -- metrics -----------------------------------------------------------------------------
def test_shot_groups_and_reports():
    counts = np.array([5, 500, 50, 300, 10, 100])
    groups = shot_groups(counts)
    assert list(groups["many"]) == [1, 3] and list(groups["few"]) == [4, 0]
    labels = np.repeat(np.arange(6), 10)
    predicted = np.where(np.isin(labels, [1, 3]), labels, 0)
    report = classification_report(predicted, labels, 6, counts)
    assert report["many_shot_accuracy"] == 1.0 and report["few_shot_accuracy"] == 0.5
    assert mean_iou(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2) == pytest.approx(
        (1 / 2 + 2 / 3) / 2)


# -- SAFE --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_tail():
    spec = DataSpec(dataset="synthetic", image_size=16, classes=6, samples_per_class_max=240,
                    imbalance_ratio=30.0, partition="dirichlet", dirichlet_alpha=1.0,
                    ses_per_class=8, test_per_class=40)
    return build_federation(spec, 4, seed=0)


def _run(data, safe: SafeConfig | None, rounds: int = 3, name: str = "safe"):
    torch.manual_seed(0)
    ace = {**ace_options(safe, len(data.clients)), "dim": 32} \
        if safe is not None and safe.ace else None
    model = build_model("small-cnn", data.classes, ace)
    config = FLConfig(rounds=rounds, train=TrainConfig(epochs=1, lr=0.02), seed=0,
                      safe=safe or SafeConfig())
    strategy = make_strategy(name if safe is None else "safe", model, config, data.ses)
    states: dict = {}
    for r in range(1, rounds + 1):
        updates = []
        for c in range(len(data.clients)):
            update, states[c] = strategy.fit(r, c, strategy.to_client(r, c), data.clients[c],
                                             dict(states.get(c, {})))
            updates.append(update)
        strategy.aggregate(r, updates)
    return strategy


@pytest.mark.parametrize("mode", ["grad_norm", "ratio_loss"])
def test_cro_weights_rank_classes_inversely_to_frequency(mode):
    """A model trained on a known long tail (IF = 50) under-fits the rare classes; CRO's
    weights must rank the classes in the opposite order of their frequency."""
    spec = DataSpec(dataset="synthetic", image_size=16, classes=6, samples_per_class_max=300,
                    imbalance_ratio=50.0, partition="iid", ses_per_class=20,
                    test_per_class=10)
    data = build_federation(spec, 1, seed=1)
    frequency = data.train_class_counts()
    torch.manual_seed(0)
    model = build_model("small-cnn", 6)
    before = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    train_local(model, data.clients[0], TrainConfig(epochs=2, lr=0.02),
                torch.Generator().manual_seed(0))
    strategy = Safe(model, FLConfig(rounds=1, safe=SafeConfig(cro_mode=mode)), data.ses)
    strategy._previous_classifier = before  # ratio_loss reads the round's classifier change
    weights = (strategy._cro_gradient_norm() if mode == "grad_norm"
               else strategy._cro_ratio_loss()).numpy()
    rare, common = np.argmin(frequency), np.argmax(frequency)
    assert weights[rare] > weights[common]
    ranks = np.argsort(np.argsort(weights)), np.argsort(np.argsort(frequency))
    assert np.corrcoef(*ranks)[0, 1] < -0.5  # Spearman rank correlation


def test_safe_sends_ses_once_and_typed_payloads(long_tail):
    strategy = _run(long_tail, SafeConfig(), rounds=1)
    first = [p.kind for p in strategy.to_client(2, 0)]
    assert "ses_images" not in first  # client 0 already has it
    assert first == ["weights", "embedding", "control", "class_weights", "feature_map"]
    fresh = [p.kind for p in strategy.to_client(2, 99)]
    assert "ses_images" in fresh


@pytest.mark.parametrize("switch", ["cro", "fau", "dmr", "ace"])
def test_every_safe_switch_changes_behaviour(long_tail, switch):
    on = _run(long_tail, SafeConfig(), rounds=3)
    off = _run(long_tail, SafeConfig(**{switch: False}), rounds=3)
    a, b = on.global_model.state_dict(), off.global_model.state_dict()
    shared = [k for k in a if k in b]
    assert len(shared) < len(a) or any(not torch.equal(a[k], b[k]) for k in shared)


@pytest.mark.parametrize("field, value", [("cro_mode", "ratio_loss"), ("fau_scope", "backbone"),
                                          ("fau_payload", "gram"), ("dmr_cro", "ramp_down"),
                                          ("ace_mode", "residual"), ("fau_cka", False),
                                          ("ace_client_contexts", False),
                                          ("fau_divergence", "relative")])
def test_every_safe_mode_changes_behaviour(long_tail, field, value):
    default = _run(long_tail, SafeConfig(), rounds=3)
    changed = _run(long_tail, SafeConfig(**{field: value}), rounds=3)
    a, b = default.global_model.state_dict(), changed.global_model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_fau_mu_follows_cka_and_dmr(long_tail):
    safe = SafeConfig(ace=False, cro=False)
    strategy = _run(long_tail, safe, rounds=4)
    records = [d for d in strategy.diagnostics if "mu" in d]
    assert records and all(0.0 <= d["mu"] <= 1.0 for d in records)
    assert all(0.0 <= d["cka_divergence"] <= 1.0 for d in records)
    # absolute divergence: mu = s(t) min(tau D / D_ref, mu_max), D as measured
    for d in records:
        expected = dmr.local_factor(d["round"], 4) * min(
            safe.fau_tau * d["cka_divergence"] / safe.fau_divergence_ref, safe.fau_mu_max)
        assert d["mu"] == pytest.approx(expected)
    # relative: round 2 is a client's first EMA, its divergence its typical one: s(2) tau
    relative = _run(long_tail, SafeConfig(ace=False, cro=False, fau_divergence="relative"),
                    rounds=4)
    second = [d for d in relative.diagnostics if "mu" in d and d["round"] == 2]
    assert second[0]["mu"] == pytest.approx(dmr.local_factor(2, 4) * SafeConfig().fau_tau)


@pytest.mark.parametrize("mode", ["residual", "gate"])
def test_ace_masks_find_the_foreground_and_do_not_collapse(mode):
    """A bright 10 px square whose colour is the class, on clutter with dimmer distractor
    squares of every colour: after training the evaluation mask is partial (neither
    all-zero nor all-one) and lies on the object."""
    gen = torch.Generator().manual_seed(0)
    n, size = 800, 32
    labels = torch.randint(0, 3, (n,), generator=gen)
    images = 0.3 * torch.randn(n, 3, size, size, generator=gen)
    colours = torch.eye(3) * 3.0
    on_object = torch.zeros(n, size, size)
    for i in range(n):
        for _ in range(3):
            y, x = torch.randint(0, size - 4, (2,), generator=gen).tolist()
            colour = colours[int(torch.randint(0, 3, (1,), generator=gen))]
            images[i, :, y:y + 4, x:x + 4] += 0.7 * colour[:, None, None]
        y, x = torch.randint(0, size - 10, (2,), generator=gen).tolist()
        images[i, :, y:y + 10, x:x + 10] += colours[labels[i]][:, None, None]
        on_object[i, y:y + 10, x:x + 10] = 1.0
    data = ImageSet(images, labels)
    torch.manual_seed(0)
    model = build_model("small-cnn", 3, {"dim": 32, "mode": mode})
    train_local(model, data, TrainConfig(epochs=6, lr=0.05), gen)
    assert (predict(model, data) == labels.numpy()).mean() > 0.9
    model(data.images[:200])  # predict() left the model in evaluation mode
    mask = model.ace.last_mask[:, 0]                                  # (200, 8, 8)
    cells = torch.nn.functional.avg_pool2d(on_object[:200, None], 4)[:, 0] > 0.5
    assert 0.05 < float(mask.mean()) < 0.95
    assert float(mask[cells].mean()) > float(mask[~cells].mean()) + 0.3


def test_safe_flops_overhead_of_ace_is_reported():
    from orbitfl.fl.flops import forward_flops
    plain = forward_flops(build_model("small-cnn", 10), (3, 32, 32))
    with_ace = forward_flops(build_model("small-cnn", 10, {}), (3, 32, 32))
    assert 0.0 < (with_ace - plain) / plain < 0.5


def test_safe_needs_its_ses():
    with pytest.raises(ValueError, match="Self-Examination Sample"):
        make_strategy("safe", build_model("small-cnn", 3), FLConfig(rounds=1))
    assert Safe.name == "safe"


def test_safe_runs_on_segmentation_with_pixel_restricted_cro():
    gen = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 3, (12, 16, 16), generator=gen)
    masks[:, :8] = 0  # class 0 dominates the pixels
    images = torch.randn(12, 3, 16, 16, generator=gen) + masks[:, None].float()
    data = ImageSet(images, masks)
    ses = ImageSet(images[:6], masks[:6])
    torch.manual_seed(0)
    model = build_model("seg-unet", 3, {"dim": 16})
    strategy = make_strategy("safe", model, FLConfig(rounds=2, safe=SafeConfig(ace_dim=16)), ses)
    state: dict = {}
    for r in (1, 2):
        update, state = strategy.fit(r, 0, strategy.to_client(r, 0), data, state)
        strategy.aggregate(r, [update])
    weights = strategy.class_weights
    assert weights.shape == (3,) and torch.isfinite(weights).all()
    grads = strategy._class_gradients()
    assert all(g.shape == (3, 32) for g in grads)  # the 1x1 conv classifier, as a matrix
