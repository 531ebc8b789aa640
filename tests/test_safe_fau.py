"""FAU's inputs and its mu (docs/safe-method.md, FAU), and losses that must compose.

Regression tests for the audit of the SAFE study: the SES reached clients quantised with
another dataset's normalisation (clients and server compared different images), the
CKA-driven mu saturated at 1 and existed only with DMR on, ``fau_mu_max`` could not be set
from a scenario, and FedProx's proximal term replaced ACE's mask-prior loss.
"""

from pathlib import Path

import pytest
import torch

from orbitfl.fl import safe as safe_module
from orbitfl.fl.cka import linear_cka
from orbitfl.fl.datasets import ImageSet
from orbitfl.fl.federation import DataSpec, build_federation
from orbitfl.fl.models import build_model
from orbitfl.fl.registry import make_strategy
from orbitfl.fl.strategy import FLConfig, SafeConfig
from orbitfl.fl.training import LocalTrainer, TrainConfig, features

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synthetic():
    """The synthetic dataset normalises with (0.5, 0.25), not geo-synthetic's (0.40, 0.25)."""
    spec = DataSpec(dataset="synthetic", image_size=16, classes=4, samples_per_class_max=60,
                    imbalance_ratio=1.0, partition="iid", ses_per_class=6, test_per_class=10)
    return build_federation(spec, 2, seed=3)


def _strategy(data, **switches):
    torch.manual_seed(0)
    config = FLConfig(rounds=6, train=TrainConfig(epochs=1, lr=0.02), seed=0,
                      safe=SafeConfig(ace=False, cro=False, **switches))
    return make_strategy("safe", build_model("small-cnn", data.classes), config, data.ses)


def test_clients_receive_the_ses_the_server_compares_against(synthetic):
    strategy = _strategy(synthetic)
    _, state = strategy.fit(1, 0, strategy.to_client(1, 0), synthetic.clients[0], {})
    client_ses = state["ses"]  # kept in the client's own state
    original = synthetic.ses.images
    span = original.amax(dim=(0, 2, 3)) - original.amin(dim=(0, 2, 3))
    # Nothing clipped: every value within half a quantisation step of the original.
    error = (client_ses - original).abs().amax(dim=(0, 2, 3))
    assert torch.all(error <= span / 255 / 2 + 1e-6)
    # The server's A_g is the same model on the same images: CKA exactly 1.
    global_features = features(strategy.global_model, client_ses)
    assert torch.equal(global_features, strategy._global_features)
    assert linear_cka(strategy._global_features, global_features) == pytest.approx(1.0, abs=1e-12)


def _run_with_divergences(monkeypatch, data, divergences, **switches):
    """Drive FAU with a prescribed sequence of CKA divergences (one per EMA start)."""
    sequence = iter(divergences)
    monkeypatch.setattr(safe_module, "linear_cka", lambda a, b: 1.0 - next(sequence))
    strategy = _strategy(data, **switches)
    state: dict = {}
    for r in range(1, len(divergences) + 2):
        update, state = strategy.fit(r, 0, strategy.to_client(r, 0), data.clients[0], state)
        strategy.aggregate(r, [update])
    return [d["mu"] for d in strategy.diagnostics if "mu" in d]


@pytest.mark.parametrize("divergences", [[0.4, 0.2, 0.1, 0.05, 0.02],      # falling
                                         [0.001, 0.05, 0.2, 0.4, 0.6]])    # rising
def test_cka_driven_mu_stays_below_its_bound(monkeypatch, synthetic, divergences):
    safe = SafeConfig()
    bound = safe.fau_mu_max
    absolute = _run_with_divergences(monkeypatch, synthetic, divergences, dmr=False)
    assert absolute == pytest.approx([min(safe.fau_tau * d / safe.fau_divergence_ref, bound)
                                      for d in divergences])
    mus = _run_with_divergences(monkeypatch, synthetic, divergences, dmr=False,
                                fau_divergence="relative")
    assert len(mus) == len(divergences)
    assert max(mus) <= bound < 1.0
    # Relative, without DMR, the first EMA keeps exactly tau of the personal model.
    assert mus[0] == pytest.approx(safe.fau_tau)


def test_absolute_divergence_keeps_a_far_client_apart_from_a_close_one(monkeypatch,
                                                                       synthetic):
    """A client always far from the global model (D = 0.15) and one always close
    (D = 0.03): the relative reading gives both mu = tau, the absolute one keeps the
    difference (the audit's point about the normalisation)."""
    far, close = ([d] * 2 for d in (0.15, 0.03))
    for mode, same in (("relative", True), ("absolute", False)):
        mus_far = _run_with_divergences(monkeypatch, synthetic, far, dmr=False,
                                        fau_divergence=mode)
        mus_close = _run_with_divergences(monkeypatch, synthetic, close, dmr=False,
                                          fau_divergence=mode)
        assert (mus_far == pytest.approx(mus_close)) == same
    assert mus_far == pytest.approx([0.75] * 2) and mus_close == pytest.approx([0.15] * 2)


def test_cka_driven_mu_works_without_dmr_and_follows_the_divergence(monkeypatch, synthetic):
    mus = _run_with_divergences(monkeypatch, synthetic, [0.1, 0.1, 0.3, 0.02], dmr=False)
    assert len(set(round(m, 9) for m in mus)) > 1       # not the fixed mu
    assert mus[2] > mus[1] > mus[3]                      # more drift, more personal weight


def test_fau_mu_max_is_settable_from_a_scenario(tmp_path):
    from orbitfl.scenario import load_scenario

    text = (REPO / "scenarios" / "quickstart.yaml").read_text()
    text = text.replace("tle: ../tle/", f"tle: {REPO / 'tle'}/")
    path = tmp_path / "s.yaml"
    path.write_text(text + "\n")
    scenario = load_scenario(path)
    document = scenario.model_dump()
    document["fl"]["safe"]["fau_mu_max"] = 0.3
    changed = type(scenario).model_validate(document)
    assert changed.fl.safe.fau_mu_max == 0.3


def test_fedprox_keeps_aces_auxiliary_loss():
    """A proximal term of ~0 must leave training as it is without it: before the fix it
    replaced the objective and dropped ACE's mask-prior loss."""
    gen = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randn(64, 3, 16, 16, generator=gen), torch.randint(0, 3, (64,),
                                                                            generator=gen))
    results = []
    for mu in (0.0, 1e-12):
        torch.manual_seed(0)
        model = build_model("small-cnn", 3, {"dim": 16, "prior_weight": 5.0})
        reference = {k: v.clone() for k, v in model.state_dict().items()}
        torch.manual_seed(1)
        LocalTrainer(model, TrainConfig(epochs=2, lr=0.05)).train(
            data, torch.Generator().manual_seed(2), prox_mu=mu, prox_reference=reference)
        results.append(model.state_dict())
    for key in results[0]:
        assert torch.allclose(results[0][key].float(), results[1][key].float(), atol=1e-5), key


def test_fixed_mu_sends_neither_the_ses_nor_the_feature_map(synthetic):
    """Fixed mu never compares features: charging the SES and A_g to it overstated the
    fixed-mu ablation's bytes."""
    fixed = [p.kind for p in _strategy(synthetic, fau_cka=False).to_client(1, 0)]
    driven = [p.kind for p in _strategy(synthetic).to_client(1, 0)]
    assert "ses_images" not in fixed and "feature_map" not in fixed
    assert "ses_images" in driven and "feature_map" in driven
