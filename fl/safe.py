"""SAFE (docs/safe-method.md): CRO class rectification, FAU feature-aligned EMA updates, DMR,
and the ACE module (which lives in the model; see ``models.ACE``).

The server owns the Self-Examination Sample (SES): K images per class, never in any
client's data. It is broadcast once per client (``ses_images``) so that clients can compute
features on the very same images as the server (CKA needs paired inputs): the images travel
as 8 bits per value on each channel's own range (whatever the dataset's normalisation), and
the server computes its FAU features on the same decoded images the clients get, so both
ends compare bit-identical inputs.

FAU's CKA-driven mu (docs/safe-method.md, FAU) is ``mu_i = s(t) * min(tau * D_i / D_ref,
mu_max)``: with ``fau_divergence: absolute`` (default) ``D_ref`` is a fixed reference
divergence, so a client always far from the global model keeps more of its own than one
always close; with ``relative`` it is the mean of the divergences the client has shown so
far, which gives every client mu ~ tau on average whatever its distance.

ACE's per-client contexts (``ace_client_contexts``): each client trains its own context
embeddings E_i; the server keeps every client's last E_i in the model's ``ace.bank`` buffer
(the embedding matrix, clients x K x d), broadcast inside the ``embedding`` payload (and
charged by its shape), never uploaded back. A client starts from its own row.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from . import dmr
from .cka import gram_cka, linear_cka
from .datasets import FederatedData, ImageSet
from .models import ace_options, parts
from .payloads import Payload
from .strategy import (
    ClientState,
    ClientUpdate,
    FLConfig,
    State,
    Strategy,
    clone_state,
    weighted_average,
)
from .training import features

CRO_CLIP = (0.1, 10.0)
RATIO_LOSS_DOMINANCE = 0.8


class Safe(Strategy):
    name = "safe"

    def __init__(self, model: torch.nn.Module, config: FLConfig, ses: ImageSet):
        super().__init__(model, config)
        self.safe = config.safe
        self.ses = ses
        self.classes = parts(model).classifier.weight.shape[0]
        self.class_weights = torch.ones(self.classes)   # what clients train with
        self._cro_raw: torch.Tensor | None = None        # before DMR modulation
        self._previous_classifier = clone_state(parts(model).classifier.state_dict())
        self._ses_wire = encode_ses(ses.images)
        self._ses_decoded = decode_ses(self._ses_wire)   # what clients reconstruct
        self._global_features = features(model, self._ses_decoded)
        self._ses_sent: set[int] = set()
        self.diagnostics: list[dict] = []  # the server's, and those of updates taken in
        self.evaluation_log: list[dict] = []  # safe_diagnostics.parquet's rows
        self._fau_logged = 0  # diagnostics records already in the evaluation log

    @classmethod
    def create(cls, model: torch.nn.Module, config: FLConfig, data: FederatedData,
               options: None = None) -> "Safe":
        """SAFE's server holds the Self-Examination Sample (``data.ses``)."""
        if data.ses is None:
            raise ValueError("SAFE needs the server's Self-Examination Sample")
        return cls(model, config, data.ses)

    @classmethod
    def model_extras(cls, config: FLConfig, data: FederatedData) -> dict:
        """ACE, when switched on, is built into the model (``models.build_model``), with a
        row of the server's embedding matrix per client."""
        safe = config.safe
        return {"ace": ace_options(safe, len(data.clients))} if safe.ace else {}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["safe"] = {
            "class_weights": self.class_weights, "cro_raw": self._cro_raw,
            "previous_classifier": self._previous_classifier,
            "global_features": self._global_features, "ses_sent": sorted(self._ses_sent),
            "diagnostics": self.diagnostics, "evaluation_log": self.evaluation_log,
            "fau_logged": self._fau_logged}
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        safe = state["safe"]
        self.class_weights, self._cro_raw = safe["class_weights"], safe["cro_raw"]
        self._previous_classifier = safe["previous_classifier"]
        self._global_features = safe["global_features"]
        self._ses_sent = set(int(c) for c in safe["ses_sent"])
        self.diagnostics = list(safe["diagnostics"])
        self.evaluation_log = list(safe.get("evaluation_log", []))
        self._fau_logged = int(safe.get("fau_logged", 0))

    @property
    def keeps_personal_models(self) -> bool:  # type: ignore[override]
        return self.safe.fau

    @property
    def _fau_compares(self) -> bool:
        """FAU with CKA-driven mu needs the SES and A_g; fixed mu needs neither (and must
        not be charged their bytes)."""
        return self.safe.fau and self.safe.fau_cka

    # -- server -> client -----------------------------------------------------------------
    def to_client(self, round_index: int, client_id: int) -> list[Payload]:
        payloads = super().to_client(round_index, client_id)
        if self._fau_compares and client_id not in self._ses_sent:
            payloads.append(Payload.encode("ses_images", self._ses_wire))
            self._ses_sent.add(client_id)
        if self.safe.cro:
            payloads.append(Payload.encode("class_weights", {"w": self.class_weights.clone()}))
        if self._fau_compares:
            a_g = self._global_features
            tensor = a_g @ a_g.T if self.safe.fau_payload == "gram" else a_g
            payloads.append(Payload.encode("feature_map", {"A_g": tensor.to(torch.float32)}))
        return payloads

    # -- client ---------------------------------------------------------------------------
    def fit(self, round_index: int, client_id: int, received: Sequence[Payload],
            data: ImageSet, state: ClientState) -> tuple[ClientUpdate, ClientState]:
        """The client's memories (``state``): its decoded SES (``ses``, kept from the one
        broadcast that carried it), its personal model (``personal``) and its history of
        CKA divergences (``divergences``), besides the base class's top-k residual."""
        global_state, version = self.received_state(received)
        by_kind = {p.kind: p for p in received}
        if "ses_images" in by_kind:
            state["ses"] = decode_ses(by_kind["ses_images"].tensors)
        start = global_state
        diagnostics: dict = {}
        if self.safe.fau:
            a_g = by_kind["feature_map"].tensors["A_g"] if self._fau_compares else None
            start, diagnostics = self._feature_aligned_start(round_index, client_id,
                                                             global_state, a_g, state)
        if BANK in start and len(start[BANK]):  # the client's own contexts, as last uploaded
            start = {**start, EMBEDDINGS: start[BANK][client_id].clone()}
        self.worker.load_state_dict(start)
        weights = by_kind["class_weights"].tensors["w"] if self.safe.cro else None
        loss = self.trainer.train(data, self.client_generator(round_index, client_id),
                                  class_weights=weights)
        trained = clone_state(self.worker.state_dict())
        if self.safe.fau:
            state["personal"] = trained
        payloads, state = self.upload(trained, global_state, state)
        return ClientUpdate(client_id, round_index, len(data), payloads, loss, version,
                            diagnostics), state

    def _feature_aligned_start(self, round_index: int, client_id: int, global_state: State,
                               a_g: torch.Tensor | None, state: ClientState
                               ) -> tuple[State, dict]:
        """FAU: theta_i <- mu theta_i_prev + (1 - mu) theta_g; the first participation
        adopts the global model. Appends to the client's divergence history in ``state``;
        returns the start and the diagnostics (D and mu)."""
        previous = state.get("personal")
        if previous is None:
            return global_state, {}
        s = dmr.local_factor(round_index, self.config.rounds) if self.safe.dmr else 1.0
        divergence = float("nan")
        if self.safe.fau_cka:
            assert a_g is not None  # fit sends A_g whenever FAU uses CKA
            self.worker.load_state_dict(previous)
            a_i = features(self.worker, state["ses"])
            similarity = gram_cka(a_g, a_i @ a_i.T) if self.safe.fau_payload == "gram" \
                else linear_cka(a_g, a_i)
            divergence = float(1.0 - similarity)
            history = state["divergences"] = [*state.get("divergences", []), divergence]
            mu = s * fau_mu(divergence, history, self.safe.fau_tau, self.safe.fau_mu_max,
                            self.safe.fau_divergence, self.safe.fau_divergence_ref)
        else:
            mu = s * min(self.safe.fau_mu_fixed, self.safe.fau_mu_max)
        diagnostics = {"round": round_index, "client": client_id,
                       "cka_divergence": divergence, "mu": float(mu)}
        mixed = {}
        for key, value in global_state.items():
            in_scope = key != BANK and (self.safe.fau_scope == "all"
                                        or key.startswith("backbone."))
            if value.is_floating_point() and in_scope:
                mixed[key] = mu * previous[key] + (1.0 - mu) * value
            else:
                mixed[key] = value
        return mixed, diagnostics

    def upload(self, trained: State, base: State, state: ClientState
               ) -> tuple[list[Payload], ClientState]:
        """As every strategy's, less the embedding matrix: the server has it already."""
        return super().upload({k: v for k, v in trained.items() if k != BANK}, base, state)

    # -- server ---------------------------------------------------------------------------
    def aggregate(self, round_index: int, updates: Sequence[ClientUpdate]) -> None:
        self.diagnostics.extend(u.diagnostics for u in updates if u.diagnostics)
        states = [self.uploaded_state(u) for u in updates]
        merged = weighted_average(states, [u.num_samples for u in updates])
        if BANK in merged and len(merged[BANK]):  # each client's row: its own contexts
            for update, state in zip(updates, states):
                merged[BANK][update.client_id] = state[EMBEDDINGS]
        self.commit(merged)
        if self.safe.cro:
            raw = self._cro_gradient_norm() if self.safe.cro_mode == "grad_norm" \
                else self._cro_ratio_loss()
            if self._cro_raw is not None and self.safe.cro_smoothing:
                raw = 0.9 * self._cro_raw + 0.1 * raw
            self._cro_raw = raw
            self.class_weights = self._modulated(raw, round_index + 1)
            self.diagnostics.append({"round": round_index, "cro_weights":
                                     self.class_weights.tolist()})
        self._previous_classifier = clone_state(parts(self.global_model).classifier.state_dict())
        if self._fau_compares:
            self._global_features = features(self.global_model, self._ses_decoded)

    def _modulated(self, raw: torch.Tensor, next_round: int) -> torch.Tensor:
        """DMR on CRO: w_t = g(t) 1 + s(t) w (ramp_up), w (constant), s 1 + g w (ramp_down)."""
        if not self.safe.dmr or self.safe.dmr_cro == "constant":
            return raw.clone()
        s = dmr.local_factor(next_round, self.config.rounds)
        g = 1.0 - s
        if self.safe.dmr_cro == "ramp_up":
            return g + s * raw
        return s + g * raw

    def _class_gradients(self) -> list[torch.Tensor]:
        """G_c = d/dW mean CE over the SES examples of class c (over its pixels, for
        segmentation), W the final classifier's weight as a (classes, d) matrix."""
        model = parts(self.global_model)
        self.global_model.eval()
        with torch.no_grad():
            head = torch.cat([model.head_input(self.ses.images[i:i + 256])
                              for i in range(0, len(self.ses), 256)]).cpu()
        weight = model.classifier.weight.detach().cpu().reshape(self.classes, -1)
        weight = weight.clone().requires_grad_(True)
        assert model.classifier.bias is not None  # fl.models gives every classifier a bias
        bias = model.classifier.bias.detach().cpu()
        if head.dim() == 2:
            logits = head @ weight.T + bias
        else:  # a 1x1 convolution over (n, d, H, W)
            logits = torch.einsum("ndhw,cd->nchw", head, weight) + bias[:, None, None]
        labels = self.ses.labels
        losses = F.cross_entropy(logits, labels.clamp_min(0), reduction="none")
        grads = []
        for c in range(self.classes):
            mine = labels == c
            loss = losses[mine].mean() if mine.any() else losses.sum() * 0.0
            grads.append(torch.autograd.grad(loss, weight, retain_graph=True)[0])
        return grads

    def _cro_gradient_norm(self) -> torch.Tensor:
        """CRO: w_c = clip(C g_c / sum_j g_j, 0.1, 10) with g_c = ||G_c||_F."""
        norms = torch.stack([g.norm() for g in self._class_gradients()])
        return torch.clamp(self.classes * norms / norms.sum(), *CRO_CLIP)

    def _cro_ratio_loss(self) -> torch.Tensor:
        """Ratio-loss estimator (after Wang et al., AAAI 2021), as orbitfl reads it: a
        balanced one-step update per class on the SES (dW_c ~ G_c); class-dominant weights
        are those where class c makes >= 80 % of the summed |dW|; the global classifier's
        actual change this round, measured on class c's dominant weights relative to dW_c,
        estimates c's share r_c of the federation's data. Ra_c = max_j r_j / r_c - 1 (0 for
        the majority class) and w_c = clip(1 + 0.1 Ra_c, 0.1, 10)."""
        grads = torch.stack([g.abs() for g in self._class_gradients()])  # (C, classes, d)
        share = grads / grads.sum(dim=0, keepdim=True).clamp_min(1e-12)
        change = (parts(self.global_model).classifier.weight.detach().cpu()
                  - self._previous_classifier["weight"].cpu()).abs().reshape(self.classes, -1)
        ratios = []
        for c in range(self.classes):
            mask = share[c] >= RATIO_LOSS_DOMINANCE
            if not mask.any():
                mask = torch.ones_like(mask)
            ratios.append(change[mask].mean() / grads[c][mask].mean().clamp_min(1e-12))
        r = torch.stack(ratios).clamp_min(1e-12)
        ra = r.max() / r - 1.0
        return torch.clamp(1.0 + 0.1 * ra, *CRO_CLIP)

    def ace_foreground_fraction(self) -> float:
        """Mean evaluation mask (the soft foreground probability) of the global model over
        the SES's positions: ACE's collapse diagnostic (NaN without ACE)."""
        return self.ace_mask_statistics().get("ace_foreground", float("nan"))

    def ace_mask_statistics(self) -> dict[str, float]:
        """The global model's evaluation mask on the SES: its mean (``ace_foreground``), the
        share of positions whose foreground probability exceeds 1/2 (``..._hard``, what an
        argmax mask would keep) and its spread over positions (``..._sd``; near 0, the mask
        does not tell positions apart)."""
        ace = self.global_model.ace
        if ace is None:
            return {}
        soft = torch.cat([_mask_of(self.global_model, self.ses.images[i:i + 256])
                          for i in range(0, len(self.ses), 256)])
        statistics = {"ace_foreground": float(soft.mean()),
                      "ace_foreground_hard": float((soft > 0.5).float().mean()),
                      "ace_foreground_sd": float(soft.std()) if soft.numel() > 1 else 0.0}
        if self.ses.foreground is not None:
            statistics.update(mask_against_objects(soft, self.ses.foreground))
        return statistics

    def note_evaluation(self, round_index: int) -> None:
        """Append this evaluation's rows to ``evaluation_log`` (safe_diagnostics.parquet):
        ACE's mask statistics and CRO's class weights at ``round_index``, and FAU's
        divergence and mu of every fit taken in since the last evaluation, at the round
        each fit ran in."""
        rows = self.evaluation_log
        for quantity, value in self.ace_mask_statistics().items():
            rows.append(_row(round_index, None, quantity, None, value))
        if self.safe.cro:
            rows.extend(_row(round_index, None, "cro_weight", k, float(w))
                        for k, w in enumerate(self.class_weights.tolist()))
        for record in self.diagnostics[self._fau_logged:]:
            if "mu" in record:
                rows.append(_row(record["round"], record["client"], "fau_divergence", None,
                                 record["cka_divergence"]))
                rows.append(_row(record["round"], record["client"], "fau_mu", None,
                                 record["mu"]))
        self._fau_logged = len(self.diagnostics)


BANK, EMBEDDINGS = "ace.bank", "ace.embeddings"


def fau_mu(divergence: float, history: Sequence[float], tau: float, mu_max: float,
           mode: str, reference: float) -> float:
    """FAU's mu before DMR: ``min(tau * D / D_ref, mu_max)``; ``D_ref`` is ``reference``
    (absolute) or the mean of the client's divergences so far, today's included
    (relative)."""
    if mode == "relative":
        reference = max(sum(history) / len(history), 1e-6)
    return min(tau * divergence / reference, mu_max)


def mask_against_objects(soft: torch.Tensor, foreground: torch.Tensor) -> dict[str, float]:
    """ACE's evaluation mask ``soft`` (N, h, w) against the images' true object pixels
    ``foreground`` (N, S, S), on the mask's grid: a cell is an object cell when at least
    half its pixels are object, a background cell when none is (cells in between count as
    neither). ``ace_foreground_objects`` and ``..._background``: the mean foreground
    probability on each; ``ace_object_auc``: the probability that an object cell scores
    above a background cell (ties count half; 0.5: the mask cannot tell objects from
    background, 1: it always can). NaN where either kind of cell is missing."""
    from scipy import stats  # here, not at the top: a worker that never evaluates skips it

    grid = (int(soft.shape[-2]), int(soft.shape[-1]))
    share = F.adaptive_avg_pool2d(foreground[:, None].float(), grid)[:, 0]
    on, off = soft[share >= 0.5].double().numpy(), soft[share == 0].double().numpy()
    if not len(on) or not len(off):
        nan = float("nan")
        return {"ace_foreground_objects": nan, "ace_foreground_background": nan,
                "ace_object_auc": nan}
    u = stats.mannwhitneyu(on, off, alternative="two-sided", method="asymptotic").statistic
    return {"ace_foreground_objects": float(on.mean()),
            "ace_foreground_background": float(off.mean()),
            "ace_object_auc": float(u) / (len(on) * len(off))}


def _row(round_index: int, client: int | None, quantity: str, index: int | None,
         value: float) -> dict:
    return {"round": int(round_index), "client": client, "quantity": quantity,
            "index": index, "value": float(value)}


@torch.no_grad()
def _mask_of(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """ACE's evaluation mask (soft foreground probability) for ``images``: (N, h, w)."""
    model.eval()
    device = next(model.parameters()).device
    ace = parts(model).ace
    assert ace is not None  # only ACE models have an evaluation mask
    parts(model).features(images.to(device))
    assert ace.last_soft is not None  # set by the forward pass just run
    return ace.last_soft[:, 0].cpu()


def encode_ses(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The SES on the wire: 8 bits per value on each channel's own [min, max] range (a few
    floats of offset and scale travel along), so no value is clipped whatever the dataset's
    normalisation."""
    low = images.amin(dim=(0, 2, 3)).to(torch.float32)
    high = images.amax(dim=(0, 2, 3)).to(torch.float32)
    scale = torch.where(high > low, (high - low) / 255.0, torch.ones_like(low))
    codes = torch.round((images - low[None, :, None, None]) / scale[None, :, None, None])
    return {"images": codes.clamp(0, 255).to(torch.uint8), "offset": low, "scale": scale}


def decode_ses(wire: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The SES images a receiver reconstructs (the server uses the same for FAU)."""
    offset, scale = wire["offset"][None, :, None, None], wire["scale"][None, :, None, None]
    return wire["images"].to(torch.float32) * scale + offset


def true_class_frequency(data: Sequence[ImageSet], classes: int) -> np.ndarray:
    counts = np.sum([d.class_counts(classes) for d in data], axis=0)
    return counts / counts.sum()
