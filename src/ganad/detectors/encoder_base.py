"""Shared code of the encoder-based detectors (f-AnoGAN, BiGAN / EGBAD, ALAD, GANomaly, β-VAEGAN).

An encoder method inverts a sample in one forward pass: z = E(x), x̂ = G(z). With
``inversion='search'`` the AnoGAN latent search runs instead, started from E(x)
(``search_init='encoder'``, a warm start) or from the usual hashed random codes
(``search_init='random'``), so encoder and search combine.
"""

from __future__ import annotations

import torch

from ganad.detectors.base import BaseGANDetector
from ganad.inversion.latent_search import SEARCH_CONSTRAINTS, LatentSearch, check_search_params
from ganad import runtime
from ganad.params import Param, options
from ganad.training import distributed
from ganad.training.objectives import d_loss, g_loss, wmean

INVERSIONS = ("encoder", "search")
SEARCH_INITS = ("encoder", "random")

#: parameters every encoder method adds to the common ones
ENCODER_PARAMS = """
    inversion : {'encoder', 'search'}, default 'encoder'
        How a sample is mapped to its code: one encoder pass z = E(x) (fast, exportable to ONNX),
        or the AnoGAN latent search.
    search_init : {'encoder', 'random'}, default 'encoder'
        With ``inversion='search'``: start the search from E(x) (warm start) or from random codes.
    search_distance, search_eps, search_n_max, search_lr, search_restarts, search_feature_weight
        The latent search's settings, as in :class:`ganad.AnoGAN` (used only with ``inversion='search'``).
"""


#: the parameters every encoder method adds, typed once: name -> (type, default); see ``method_init``
ENCODER_PARAMETERS: dict[str, tuple[object, object]] = {
    "inversion": (str, "encoder"), "search_init": (str, "encoder"), "search_distance": (str, "l2"),
    "search_eps": (float, 0.005), "search_n_max": (int, 500), "search_lr": (float, 0.05), "search_restarts": (int, 1),
    "search_feature_weight": (float, 0.0),
}


def store_params(obj, params: dict) -> None:
    """Store the constructor's arguments unchanged (scikit-learn's contract)."""
    for k, v in params.items():
        if k not in ("self", "__class__"):
            setattr(obj, k, v)


def adv_losses(objective: str, real: torch.Tensor, fake: torch.Tensor, w=None, w_fake=None):
    """(discriminator loss, generator+encoder loss) of a bidirectional pair: the generator side
    wants ``fake`` judged real and ``real`` judged fake (labels flipped, as in BiGAN / ALAD).

    ``w`` (robust training's per-sample weights) weights the terms of the real pairs on both
    sides, ``w_fake`` those of fake pairs made from a training sample (ALAD's (x, G(E(x)))); fake
    pairs drawn from the prior take None. A sample of weight 0 then adds no loss term; it still sits
    in its batch, so BatchNorm layers normalise the batch with it (docs/scoring.md, robust training)."""
    return (d_loss(objective, real, fake, w, w_fake),
            g_loss(objective, fake, w_fake) + g_loss(objective, -real, w))


def joint_gradient_penalty(D, pairs_real, pairs_fake, generator=None) -> torch.Tensor:
    """WGAN-GP on a discriminator of several inputs: interpolate every input with the same α."""
    n = pairs_real[0].shape[0]
    a = distributed.batch_random(torch.rand, (n,), generator=generator).to(pairs_real[0].device)
    ins = []
    for r, f in zip(pairs_real, pairs_fake):
        aa = a.reshape((n,) + (1,) * (r.dim() - 1))
        ins.append((aa * r.detach() + (1 - aa) * f.detach()).requires_grad_(True))
    out, _ = D(*ins)
    grads = torch.autograd.grad(out.sum(), ins, create_graph=True)
    g = torch.cat([gr.flatten(1) for gr in grads], dim=1)
    return wmean((g.norm(dim=1) - 1) ** 2)


class EncoderDetector(BaseGANDetector):
    """Base of the encoder methods: encoder inversion, optional latent search warm-started from E(x)."""

    _networks: tuple[str, ...] = ("G", "D", "E")

    def _score_context(self):
        # the encoder pass needs no autograd at all; the latent search needs a local enable_grad
        return torch.inference_mode() if self.inversion == "encoder" else torch.no_grad()

    def _score_chunk(self, bs: int) -> int:
        """``score_batch_size``, or less where the networks run on compiled CPU runners
        (:mod:`ganad.runtime`). Those work in cache-sized blocks anyway; scoring a block at a
        time keeps every intermediate (x̂, features, components) cache-sized too and reuses the
        same memory from step to step. Batch-sized intermediates (megabytes at batch 4096) go
        back to the operating system after each batch and are page-faulted in again by the
        next: about a fifth of the encoder-scoring time (benchmarks/RESULTS.md)."""
        if self.inversion != "encoder" or self.device_.type != "cpu":
            return bs  # the latent search keeps score_batch_size as its batch
        blocks = [b for name in self._networks if (b := self._inference_net(name).preferred_batch()) is not None]
        return min([bs] + blocks)

    _parameter_constraints = {
        "inversion": Param(options(*INVERSIONS), fix="use 'encoder' (one pass of E) or 'search' (latent search)"),
        "search_init": Param(options(*SEARCH_INITS), fix="use 'encoder' (start the search from E(x)) or 'random'"),
        **SEARCH_CONSTRAINTS,
    }

    def _scoring_key(self) -> dict:
        # the encoder's z and the search's z give components on other scales: threshold_ goes with one of them
        return {**super()._scoring_key(), "inversion": self.inversion,
                **({"search_init": self.search_init} if self.inversion == "search" else {})}

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled batch -> code E(x) (methods with a stochastic encoder return the posterior mean)."""
        return self._inference_net("E")(x)

    def latent_search(self) -> LatentSearch:
        check_search_params(self)  # also a value set after fit
        return LatentSearch(distance=self.search_distance, eps=self.search_eps, n_max=self.search_n_max,
                            lr=self.search_lr, restarts=self.search_restarts, feature_weight=self.search_feature_weight)

    def _search_D(self):
        D = self._inference_net("D")
        from ganad.nets.blocks import FeatureDiscriminator
        return D if isinstance(D.module, FeatureDiscriminator) else None  # joint D(x, z) cannot judge x alone

    def _invert(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        G = self._inference_net("G")
        if self.inversion == "encoder":
            if type(self)._encode is EncoderDetector._encode:  # E then G in one pass where the runtime fuses them
                z, x_hat, handle = runtime.encode_generate(self._inference_net("E"), G, x)
                return {"z": z, "x_hat": x_hat, "_runtime": handle}
            z = self._encode(x)
            return {"z": z, "x_hat": G(z)}
        z0 = self._encode(x) if self.search_init == "encoder" else None
        r = self.latent_search().run(G, x, self.prior_, latent_dim=self.latent_dim, D=self._search_D(),
                                     z0=z0, seed=self.seed_)
        return {"z": r.z, "x_hat": r.x_hat, "iterations": r.iterations, "search_distance": r.distance}
