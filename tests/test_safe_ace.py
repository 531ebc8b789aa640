"""SAFE's ACE as the method describes it (issue 23): per-client context embeddings that the
server gathers into an embedding matrix, broadcast and charged by shape; a mask that gates
features (background down, foreground up); the evaluation mask as the training mask's
expectation; SAFE's diagnostics in the run directory; the fixed-mu and DMR-off switches."""

import math

import pandas as pd
import pytest
import torch
import yaml

from orbitfl.cli import main
from orbitfl.fl import dmr
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.extensions import strategy_named
from orbitfl.fl.models import ACE, AceMask, build_model, gated
from orbitfl.fl.safe import Safe
from orbitfl.fl.strategy import FLConfig, SafeConfig
from orbitfl.fl.training import TrainConfig
from orbitfl.rundir import columns
from orbitfl.scenario import load_scenario

from conftest import SCENARIOS, TLE_DIR


def _images(n: int, seed: int) -> ImageSet:
    gen = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randn(n, 3, 16, 16, generator=gen),
                    torch.randint(0, 3, (n,), generator=gen))


def _contexts_strategy(clients: int, **switches) -> Safe:
    torch.manual_seed(0)
    model = build_model("small-cnn", 3, {"dim": 4, "contexts": 2, "clients": clients})
    safe = SafeConfig(cro=False, fau=False, ace_dim=4, ace_contexts=2, **switches)
    return strategy_named("safe", model, FLConfig(rounds=3, safe=safe), _images(6, 9))


def test_client_contexts_form_the_servers_matrix_and_are_charged_by_shape(monkeypatch):
    """Hand-built training: client c's E becomes all (c + 1). The server's matrix holds
    each client's own E, the global E is their sample-weighted mean, a client's next round
    starts from its own row, and the matrix travels down only, at 4 bytes a value plus the
    tensor header (16 + 4 per dimension)."""
    clients, sizes = 3, [4, 6, 10]
    strategy = _contexts_strategy(clients)
    starts: dict[tuple[int, int], torch.Tensor] = {}

    def fake_train(data, generator, class_weights=None, **_):
        ace = strategy.worker.ace
        starts[(current["round"], current["client"])] = ace.embeddings.detach().clone()
        with torch.no_grad():
            ace.embeddings.fill_(current["client"] + 1.0)
        return 0.0

    monkeypatch.setattr(strategy.trainer, "train", fake_train)
    current: dict = {}
    for r in (1, 2):
        updates = []
        for c in range(clients):
            current.update(round=r, client=c)
            down = strategy.to_client(r, c)
            update, _ = strategy.fit(r, c, down, _images(sizes[c], c), {})
            updates.append(update)
        strategy.aggregate(r, updates)
        bank = strategy.global_model.ace.bank
        for c in range(clients):
            assert torch.equal(bank[c], torch.full((2, 4), c + 1.0))
        mean = sum(n * (c + 1.0) for c, n in enumerate(sizes)) / sum(sizes)
        torch.testing.assert_close(strategy.global_model.ace.embeddings,
                                   torch.full((2, 4), mean))
    for c in range(clients):  # round 2 started from the client's own row, not the mean
        assert torch.equal(starts[(2, c)], torch.full((2, 4), c + 1.0))

    embedding_down = next(p for p in strategy.to_client(3, 0) if p.kind == "embedding")
    embedding_up = next(p for p in updates[0].payloads if p.kind == "embedding")
    matrix_bytes = 16 + 4 * 3 + 4 * (clients * 2 * 4)  # (3, 2, 4) float32
    assert embedding_down.nbytes - embedding_up.nbytes == matrix_bytes
    assert "ace.bank" in embedding_down.tensors and "ace.bank" not in embedding_up.tensors
    # The whole ACE message, by hand: 64 header, then per tensor 16 + 4 * dims + 4 * values
    # for E (2, 4), bank (3, 2, 4), query (4, 128, 1, 1) + bias (4), key and value (4, 4),
    # mask head (2, 4) + bias (2), gamma ().
    shapes = [(2, 4), (3, 2, 4), (4, 128, 1, 1), (4,), (4, 4), (4, 4), (2, 4), (2,), ()]
    expected = 64 + sum(16 + 4 * len(s) + 4 * math.prod(s) for s in shapes)
    assert embedding_down.nbytes == expected == 2640


def test_shared_contexts_have_no_matrix():
    strategy = _contexts_strategy(0)
    assert strategy.global_model.ace.bank.shape == (0, 2, 4)
    assert strategy.global_model.ace.contexts().shape == (2, 4)


def test_gate_scales_background_down_and_foreground_up():
    features = torch.full((1, 2, 1, 2), 2.0)
    mask = torch.tensor([[[[0.0, 1.0]]]])             # left background, right foreground
    out = gated(features, mask, torch.zeros(()), "gate")  # a = sigmoid(0) = 1/2
    assert torch.equal(out[0, :, 0, 0], torch.tensor([1.0, 1.0]))   # 2 x (1 - 1/2)
    assert torch.equal(out[0, :, 0, 1], torch.tensor([3.0, 3.0]))   # 2 x (1 + 1/2)
    residual = gated(features, torch.zeros_like(mask), torch.ones(()), "residual")
    assert torch.equal(residual, features)  # an empty mask changes nothing in residual


def _hand_built_ace(mode: str, bias: float = 0.0) -> ACE:
    """Queries copy the features (channels = d = 2); keys and values are zero, so the mask
    head reads the query: foreground logit minus background logit = 20 x channel 0 +
    ``bias``."""
    ace = ACE(2, contexts=1, dim=2, mask=AceMask(mode=mode))
    with torch.no_grad():
        ace.query.weight.copy_(torch.eye(2)[:, :, None, None])
        ace.query.bias.zero_()
        ace.key.weight.zero_()
        ace.value.weight.zero_()
        ace.mask_head.weight.copy_(torch.tensor([[0.0, 0.0], [20.0, 0.0]]))
        ace.mask_head.bias.copy_(torch.tensor([0.0, bias]))
    return ace.eval()


def test_ace_gate_on_a_hand_built_feature_map():
    """Channel 0 is +1 on the object (right column) and -1 on the background."""
    features = torch.tensor([[[[-1.0, 1.0], [-1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    ace = _hand_built_ace("gate")
    out = ace(features)
    ratio = out / features
    assert torch.all(ratio[..., 0] < 0.51) and torch.all(ratio[..., 0] > 0.49)  # x 1/2
    assert torch.all(ratio[..., 1] > 1.49) and torch.all(ratio[..., 1] < 1.51)  # x 3/2
    assert torch.allclose(ace.last_mask[0, 0], torch.tensor([[0.0, 1.0], [0.0, 1.0]]),
                          atol=1e-6)


def test_evaluation_mask_is_the_expectation_not_the_argmax():
    """The collapse of the audit: a foreground probability just under 1/2 everywhere is an
    empty argmax mask; the evaluation mask is the probability itself (what training's
    hard samples give on average), and the diagnostics tell the two apart."""
    ace = _hand_built_ace("residual", bias=math.log(0.4 / 0.6))  # p = 0.4 where x0 = 0
    ace(torch.zeros(3, 2, 4, 4))
    torch.testing.assert_close(ace.last_mask, torch.full((3, 1, 4, 4), 0.4))
    model = build_model("small-cnn", 3, {"dim": 2, "mode": "residual"})
    model.ace = ace  # a backbone of 128 channels would not fit: feed ACE zeros instead
    model.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.ReLU())
    torch.nn.init.zeros_(model.backbone[0].weight)
    torch.nn.init.zeros_(model.backbone[0].bias)
    model.classifier = torch.nn.Linear(2, 3)
    strategy = Safe(model, FLConfig(rounds=1, safe=SafeConfig(fau=False)), _images(6, 1))
    stats = strategy.ace_mask_statistics()
    assert stats["ace_foreground"] == pytest.approx(0.4)
    assert stats["ace_foreground_hard"] == 0.0 and stats["ace_foreground_sd"] < 1e-6


def test_the_mask_is_scored_against_the_true_objects_on_its_grid():
    """``mask_against_objects`` by hand: 4 x 4 pixels on a 2 x 2 mask. The object fills the
    top-left cell and a quarter of the bottom-right one (neither object nor background)."""
    from orbitfl.fl.safe import mask_against_objects

    objects = torch.zeros(1, 4, 4, dtype=torch.bool)
    objects[0, :2, :2] = True
    objects[0, 2, 2] = True
    found = mask_against_objects(torch.tensor([[[0.9, 0.2], [0.4, 0.1]]]), objects)
    assert found == pytest.approx({"ace_foreground_objects": 0.9,
                                   "ace_foreground_background": 0.3, "ace_object_auc": 1.0})
    # one object cell (0.3) against background 0.2 (above) and 0.4 (below): 1/2
    blind = mask_against_objects(torch.tensor([[[0.3, 0.2], [0.4, 0.9]]]), objects)
    assert blind["ace_object_auc"] == pytest.approx(0.5)
    # ties count half: 0.3 against 0.3 and 0.1 -> (0.5 + 1) / 2
    tied = mask_against_objects(torch.tensor([[[0.3, 0.3], [0.1, 0.9]]]), objects)
    assert tied["ace_object_auc"] == pytest.approx(0.75)
    empty = mask_against_objects(torch.rand(1, 2, 2), torch.zeros(1, 4, 4, dtype=torch.bool))
    assert all(math.isnan(v) for v in empty.values())


# -- FAU's switches ----------------------------------------------------------------------
PLANNED = 5  # rounds DMR plans for; three are run, so its schedule is still mid-way


def _two_clients_three_rounds(**switches) -> Safe:
    torch.manual_seed(0)
    config = FLConfig(rounds=PLANNED, train=TrainConfig(epochs=1, lr=0.02), seed=0,
                      safe=SafeConfig(ace=False, **switches))
    strategy = strategy_named("safe", build_model("small-cnn", 3), config, _images(9, 5))
    states: dict = {0: {}, 1: {}}
    for r in (1, 2, 3):
        updates = []
        for c in (0, 1):
            update, states[c] = strategy.fit(r, c, strategy.to_client(r, c),
                                             _images(24, 10 + c), states[c])
            updates.append(update)
        strategy.aggregate(r, updates)
    return strategy


def test_fixed_mu_is_the_set_value_under_the_schedule():
    strategy = _two_clients_three_rounds(fau_cka=False, fau_mu_fixed=0.3)
    records = [d for d in strategy.diagnostics if "mu" in d]
    assert len(records) == 4  # rounds 2 and 3, two clients
    for d in records:
        assert math.isnan(d["cka_divergence"])
        assert d["mu"] == pytest.approx(dmr.local_factor(d["round"], PLANNED) * 0.3)


def test_dmr_off_leaves_mu_and_the_class_weights_unscheduled():
    strategy = _two_clients_three_rounds(fau_cka=False, fau_mu_fixed=0.3, dmr=False)
    assert [d["mu"] for d in strategy.diagnostics if "mu" in d] == [0.3] * 4
    assert torch.equal(strategy.class_weights, strategy._cro_raw)
    on = _two_clients_three_rounds(fau_cka=False, fau_mu_fixed=0.3)
    s = dmr.local_factor(4, PLANNED)  # the weights sent for round 4
    assert 0.5 < s < 0.9
    torch.testing.assert_close(on.class_weights, (1 - s) + s * on._cro_raw)
    assert not torch.allclose(on.class_weights, on._cro_raw)
    early = dmr.local_factor(2, PLANNED)
    assert 0.0 < early < 1.0  # round 2's mu was scheduled, not the set value
    assert [d["mu"] for d in on.diagnostics if "mu" in d][:2] == \
        pytest.approx([early * 0.3] * 2)


# -- the run directory --------------------------------------------------------------------
TINY_SAFE = {
    "name": "tiny-safe", "seed": 2, "epoch": "2024-07-16T06:00:00Z", "duration": "3h",
    "constellation": {"tle": str(TLE_DIR / "planet_2024-07-16.tle"),
                      "select": {"name": "FLOCK 4X*", "limit": 3}},
    "ground_stations": {"network": "polar"},
    "links": {"downlink": {"preset": "dove-x"}, "uplink": {"preset": "dove-s"}},
    "network": {"mode": "ideal"},
    "report": {"figures": False},
    "data": {"dataset": "synthetic", "classes": 3, "image_size": 16,
             "samples_per_class_max": 30, "imbalance_ratio": 3, "test_per_class": 10,
             "partition": "dirichlet", "dirichlet_alpha": 1.0, "ses_per_class": 2},
    "fl": {"strategy": "safe", "rounds": 3, "safe": {"ace_dim": 8},
           "schedule": {"deadline": "1h", "min_clients": 3, "evaluate_every": 1}},
}


def test_safe_diagnostics_are_written_at_every_evaluation(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(TINY_SAFE))
    assert main(["run", str(scenario), "--out", str(tmp_path / "run")]) == 0
    table = pd.read_parquet(tmp_path / "run" / "safe_diagnostics.parquet")
    assert list(table.columns) == columns.TABLES["safe_diagnostics.parquet"].names
    for quantity in ("ace_foreground", "ace_foreground_hard", "ace_foreground_sd"):
        rows = table[table.quantity == quantity]
        assert sorted(rows["round"]) == [0, 1, 2, 3] and rows["client"].isna().all()
        assert rows["value"].between(0, 1).all()
    weights = table[table.quantity == "cro_weight"]
    assert sorted(weights["index"].unique()) == [0, 1, 2]
    assert len(weights) == 3 * 4 and weights["value"].between(0.1, 10).all()
    for quantity in ("fau_divergence", "fau_mu"):  # every client's fits of rounds 2 and 3
        rows = table[table.quantity == quantity]
        assert sorted(zip(rows["round"], rows["client"])) == \
            [(r, c) for r in (2, 3) for c in range(3)]
        assert rows["value"].between(0, 1).all()
    assert not table.quantity.str.startswith("ace_object").any()  # textures: no objects


def test_on_object_tiles_the_mask_is_scored_against_the_objects_at_every_evaluation(
        tmp_path):
    objects = {**TINY_SAFE, "data": {
        "dataset": "geo-synthetic-objects", "image_size": 32, "samples_per_class_max": 6,
        "imbalance_ratio": 2, "test_per_class": 2, "ses_per_class": 2,
        "partition": "dirichlet", "dirichlet_alpha": 1.0, "object_fraction": 0.2}}
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(objects))
    assert main(["run", str(scenario), "--out", str(tmp_path / "run"), "-q",
                 "--set", "fl.rounds=1"]) == 0
    table = pd.read_parquet(tmp_path / "run" / "safe_diagnostics.parquet")
    for quantity in ("ace_foreground_objects", "ace_foreground_background",
                     "ace_object_auc"):
        rows = table[table.quantity == quantity]
        assert sorted(rows["round"]) == [0, 1] and rows["value"].between(0, 1).all()


@pytest.mark.parametrize("key, default, other", [
    ("fl.safe.ace_mode", "gate", "residual"),
    ("fl.safe.ace_client_contexts", True, False),
    ("fl.safe.fau_divergence", "absolute", "relative"),
    ("fl.safe.fau_divergence_ref", 0.1, 0.2)])
def test_issue_23_switches_enter_the_content_hash_only_when_set(key, default, other):
    quickstart = SCENARIOS / "quickstart.yaml"
    base = load_scenario(quickstart).content_hash()
    assert load_scenario(quickstart, [(key, default)]).content_hash() == base
    assert load_scenario(quickstart, [(key, other)]).content_hash() != base
