"""β-VAEGAN (Lüer et al. 2023; after Larsen et al. 2016): a variational encoder q(z|x) with a
KL weight β, a generator / decoder G and a discriminator D trained on reconstructions and
prior samples. Scoring encodes with the posterior mean μ (deterministic), never a sample.

Lüer F., Weber T., Dolgich M., Böhm C. Anomaly detection with β-VAEGAN. 2023.
Larsen A. B. L., Sønderby S. K., Larochelle H., Winther O. Autoencoding beyond pixels using a
learned similarity metric. ICML 2016.
"""

from __future__ import annotations

import torch

from ganad.detectors.base import COMMON_PARAMS, check_prior, method_init
from ganad.detectors.encoder_base import ENCODER_PARAMETERS, ENCODER_PARAMS, EncoderDetector
from ganad.exceptions import InputError, _fmt
from ganad.nets import build_encoder, build_generator
from ganad.params import Param, integer, real
from ganad.scoring.composition import WeightedSum
from ganad.training.adversarial import d_pair, frozen, make_optimizer
from ganad.training.loop import Stage
from ganad.training import distributed
from ganad.training.objectives import d_loss, g_loss, gradient_penalty, lazy_weight, wmean


#: the components VAEGAN's own score can weigh (``score_weights``)
SCORE_COMPONENTS = ("residual", "discriminator", "disc_normalised", "latent_norm", "feature")


def _check_normal_prior(value) -> None:
    if check_prior(value).name != "normal":
        raise InputError(_fmt("prior", f"is {value!r}, but the VAE's KL term assumes a standard normal prior", "use prior='normal' with VAEGAN"))


def _check_score_weights(value) -> None:
    """None, or {component: weight} over SCORE_COMPONENTS with finite weights >= 0, not all 0: refused before training."""
    if value is None:
        return
    fix = (f"pass None (the residual) or a dict of weights >= 0 over {', '.join(SCORE_COMPONENTS)}, "
           "e.g. {'residual': 1.0, 'feature': 0.1}")
    if not isinstance(value, dict) or not value:
        raise InputError(_fmt("score_weights", f"is {value!r}, not a dict of component weights", fix))
    unknown = [k for k in value if k not in SCORE_COMPONENTS]
    if unknown:
        raise InputError(_fmt("score_weights", f"names {unknown}, which VAEGAN's score does not have", fix))
    bad = [k for k, w in value.items() if not real(0)(w)]
    if bad or not any(float(w) > 0 for w in value.values()):
        raise InputError(_fmt("score_weights", f"is {value!r}: " + (f"the weight(s) of {bad} are not finite numbers >= 0" if bad
                                                                      else "every weight is 0"), fix))


class VAEGAN(EncoderDetector):
    __doc__ = f"""β-VAEGAN: VAE encoder (μ, log σ²) + generator + discriminator; score from reconstruction, discriminator and latent norm.

    Training minimises, over (E, G), mean (x − G(z))² + β_t · KL(q(z|x) ‖ N(0, I)) / n_features
    + w_adv · (adversarial loss of G(z) and G(z_p)), z = μ + σ·ε, z_p ~ prior; D is trained with
    ``objective`` on x vs reconstructions and prior samples. β_t grows linearly from 0 to ``beta``
    over the first ``beta_warmup`` epochs.

    Parameters
    ----------
    {COMMON_PARAMS}
    {ENCODER_PARAMS}
    beta : float, default 1.0
        β, the KL weight.
    beta_warmup : int, default 5
        Epochs of linear KL warm-up (0 = constant β).
    w_adv : float, default 0.1
        Weight of the adversarial loss in the encoder/generator loss.
    score_weights : dict or None, default None
        Weights of the components in the method's own score; None = {{'residual': 1.0}}
        (``decision_function`` reads the ``knn`` component by default, ``knn_weight='auto'`` = 1.0:
        these weights count only with ``knn_weight`` < 1; docs/methods.md). Components:
        ``residual`` |x − G(μ)|, ``discriminator`` −log σ D(G(μ)), ``latent_norm`` ‖μ‖,
        ``feature`` (D feature matching). A λ grid or SVM over the components can be
        fitted on validation data with the scoring composition tools.
    """

    _robust_proxy_kind = "encoder"  # E trains jointly with G

    __init__ = method_init(ENCODER_PARAMETERS, beta=1.0, beta_warmup=5, w_adv=0.1, score_weights=None)

    _parameter_constraints = {
        "prior": Param(validator=_check_normal_prior),
        "score_weights": Param(validator=_check_score_weights),
        "beta": Param(real(0), fix="pass a non-negative KL weight such as 1.0"),
        "beta_warmup": Param(integer(0), fix="pass a number of epochs >= 0"),
    }

    def _build_networks(self):
        fam, shape, d = self.family_, self.data_shape_, self.latent_dim
        w, k = self._width(), self._depth()
        return {"G": build_generator(fam, d, shape, w, k, self._out_act()),
                "D": self._build_discriminator(fam, shape, w, k),
                "E": build_encoder(fam, shape, 2 * d, w, k)}  # (μ, log σ²)

    def _beta_at(self, epoch: int) -> float:
        if self.beta_warmup <= 0:
            return float(self.beta)
        return float(self.beta) * min(1.0, epoch / self.beta_warmup)

    def _stages(self, generator):
        G, D, E = self.nets_["G"], self.nets_["D"], self.nets_["E"]
        opt_g = make_optimizer(list(E.parameters()) + list(G.parameters()), self.lr_g, self.betas)
        opt_d = make_optimizer(D.parameters(), self.lr_d, self.betas)
        prior, d, obj, w_adv = self.prior_, self.latent_dim, self.objective, float(self.w_adv)
        gp_w, n_feat, gp_every = float(self.gp_weight), float(self.n_features_in_), int(self.gp_every)
        state: dict = {}  # "d": discriminator steps taken (added at the first, so that checkpoints of older runs resume)
        epoch = {"e": 0}  # set by the loop before every epoch (the KL warm-up follows it)

        def step(x, w):
            n = x.shape[0]
            beta = self._beta_at(epoch["e"])
            mu, logvar = E(x).chunk(2, dim=1)
            logvar = logvar.clamp(-10.0, 10.0)
            eps = distributed.batch_random(torch.randn, mu.shape, generator=generator).to(x.device)
            z = mu + torch.exp(0.5 * logvar) * eps
            x_rec = G(z)
            z_p = prior.sample(n, d, generator=generator).to(x.device)
            x_p = G(z_p)
            # discriminator: x real, reconstructions and prior samples fake
            (real, _), (fake, _) = d_pair(D, (x,), (torch.cat([x_rec.detach(), x_p.detach()]),))
            # fakes: reconstructions of x (weighted like x) and prior samples (weight 1)
            w_fake = None if w is None else torch.cat([w, torch.ones_like(w)])
            loss_d = d_loss(obj, real, fake, w, w_fake)
            gp_k = lazy_weight(gp_w, gp_every, state.get("d", 0))
            state["d"] = state.get("d", 0) + 1
            if obj == "wgan-gp" and gp_k > 0:
                loss_d = loss_d + gp_k * gradient_penalty(D, x, x_rec, generator=generator)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # encoder + generator
            rec = (x - x_rec).square().flatten(1).mean(1)
            kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)
            with frozen(D):
                fake, _ = D(torch.cat([x_rec, x_p]))
            adv = g_loss(obj, fake, w_fake)
            loss = wmean(rec, w) + beta * wmean(kl, w) / n_feat + w_adv * adv
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            return {"d_loss": loss_d.detach(), "loss": loss.detach(), "reconstruction": rec.mean().detach(),
                    "kl": kl.mean().detach(), "beta": torch.tensor(beta)}

        return [Stage("vaegan", self.epochs, step, modules=[G, D, E], on_epoch=lambda e: epoch.__setitem__("e", e),
                      optimizers=[opt_d, opt_g], state=state)]

    def _train_code(self, x):
        return self.nets_["E"](x).chunk(2, dim=1)[0]  # E gives (μ, log σ²): the posterior mean

    def _encode(self, x):
        mu, _ = self._inference_net("E")(x).chunk(2, dim=1)
        return mu  # posterior mean: scoring is deterministic

    def _components(self, x, inv):
        # the generic components (residual, feature, discriminator and disc_normalised, computed only where
        # asked for), with the code's length as latent_norm: the posterior mean's norm, which the KL term
        # keeps near the prior's centre (it replaced the whole dict, and disc_normalised, documented, was missing)
        comps = super()._components(x, inv)
        z = inv["z"]
        comps["latent_norm"] = lambda: z.norm(dim=1)
        return comps

    def _default_composer(self):
        return WeightedSum(self.score_weights if self.score_weights is not None else {"residual": 1.0})
