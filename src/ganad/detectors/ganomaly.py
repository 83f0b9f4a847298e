"""GANomaly (Akcay et al. 2018): an encoder-decoder-encoder generator (E, G, E2) and a
discriminator D; the score is the distance of the two latent codes, ‖E(x) − E2(G(E(x)))‖².

Akcay S., Atapour-Abarghouei A., Breckon T. P. GANomaly: semi-supervised anomaly detection
via adversarial training. ACCV 2018 (arXiv:1805.06725).
"""

from __future__ import annotations

import numpy as np
import torch

from ganad.detectors.base import COMMON_PARAMS, method_init
from ganad.detectors.encoder_base import ENCODER_PARAMETERS, ENCODER_PARAMS, EncoderDetector
from ganad.nets import build_encoder
from ganad.params import Param, options, real
from ganad.scoring.composition import WeightedSum
from ganad.training.adversarial import d_pair, frozen, make_optimizer
from ganad.training.loop import Stage
from ganad.training.objectives import d_loss, gradient_penalty, lazy_weight, wmean


class GANomaly(EncoderDetector):
    __doc__ = f"""GANomaly: encoder E, decoder G, second encoder E2, discriminator D; score ‖E(x) − E2(G(E(x)))‖².

    Training minimises w_adv·L_adv + w_con·L_con + w_lat·L_lat over (E, G, E2), with
    L_adv = ‖f(x) − f(x̂)‖² (feature matching on D's feature layer), L_con = |x − x̂| (L1),
    L_lat = ‖E(x) − E2(x̂)‖², x̂ = G(E(x)); D is trained with ``objective`` on x vs x̂.

    Parameters
    ----------
    {COMMON_PARAMS}
    {ENCODER_PARAMS}
    w_adv, w_con, w_lat : float, default 1, 50, 1
        Weights of the adversarial, contextual and latent losses (the paper's values).
    score_norm : {{'robust', 'minmax', 'none'}}, default 'robust'
        Normalisation of the latent score with statistics computed at fit time on the held-out
        slice (the training data where there is none) and stored with the model: (s − median) / (1.4826·MAD), (s − min) / (max − min), or none.

    Score components: ``latent`` (normalised, the method's own score), ``latent_raw``, ``residual``,
    ``feature``, ``discriminator``, ``latent_norm``. The method's own score; ``decision_function`` reads the ``knn`` component by default
    (``knn_weight='auto'`` = 1.0 here: the own score, and the settings above that shape it, count only
    with ``knn_weight`` < 1; docs/methods.md).
    """

    _networks = ("G", "D", "E", "E2")

    _robust_proxy_kind = "encoder"  # E trains jointly with G

    __init__ = method_init(ENCODER_PARAMETERS, w_adv=1.0, w_con=50.0, w_lat=1.0, score_norm='robust', feature_layer="auto")
    #: feature_layer='auto': D's second-to-last block (its only block where it has one): +0.008 on the three
    #: validation sets' mean AUROC over the last block, on seeds no choice had read (benchmarks/RESULTS.md,
    #: "The default score's features from D's second-to-last block", thirty-fifth session)
    _feature_layer_auto = -2

    _parameter_constraints = {
        "score_norm": Param(options("robust", "minmax", "none"), fix="use 'robust', 'minmax' or 'none'"),
        **{name: Param(real(0), fix=f"pass a non-negative number for {name}") for name in ("w_adv", "w_con", "w_lat")},
    }

    def _build_networks(self):
        nets = super()._build_networks()
        nets["E2"] = build_encoder(self.family_, self.data_shape_, self.latent_dim, self._width(), self._depth())
        return nets

    def _stages(self, generator):
        G, D, E, E2 = self.nets_["G"], self.nets_["D"], self.nets_["E"], self.nets_["E2"]
        opt_g = make_optimizer(list(E.parameters()) + list(G.parameters()) + list(E2.parameters()), self.lr_g, self.betas)
        opt_d = make_optimizer(D.parameters(), self.lr_d, self.betas)
        w_adv, w_con, w_lat, obj = float(self.w_adv), float(self.w_con), float(self.w_lat), self.objective
        gp_w, gp_every = float(self.gp_weight), int(self.gp_every)
        state: dict = {}  # "d": discriminator steps taken (added at the first, so that checkpoints of older runs resume)

        def step(x, w):
            z = E(x)
            x_hat = G(z)
            z2 = E2(x_hat)
            # D is unchanged until its own step: its outputs for x and for the (detached) x̂, from one
            # forward, serve both steps
            (real, f_x), (fake, _) = d_pair(D, (x,), (x_hat.detach(),))
            with frozen(D):
                _, f_hat = D(x_hat)
            adv = (f_x.detach() - f_hat).square().mean(1)
            con = (x - x_hat).abs().flatten(1).mean(1)
            lat = (z - z2).square().mean(1)
            loss_g = w_adv * wmean(adv, w) + w_con * wmean(con, w) + w_lat * wmean(lat, w)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            loss_d = d_loss(obj, real, fake, w, w)  # the fake x̂ = G(E(x)) comes from x too
            gp_k = lazy_weight(gp_w, gp_every, state.get("d", 0))
            state["d"] = state.get("d", 0) + 1
            if obj == "wgan-gp" and gp_k > 0:
                loss_d = loss_d + gp_k * gradient_penalty(D, x, x_hat, generator=generator)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            return {"d_loss": loss_d.detach(), "g_loss": loss_g.detach(), "adversarial": adv.mean().detach(),
                    "contextual": con.mean().detach(), "latent": lat.mean().detach()}

        return [Stage("ganomaly", self.epochs, step, modules=[G, D, E, E2], optimizers=[opt_g, opt_d], state=state)]

    def _latent_raw(self, x, inv):
        return (inv["z"] - self._inference_net("E2")(inv["x_hat"])).square().mean(1)

    def _components(self, x, inv):
        comps = super()._components(x, inv)
        memo = []

        def raw():  # E'(x̂), once, when a latent component is asked for
            if not memo:
                memo.append(self._latent_raw(x, inv))
            return memo[0]

        center, scale = self.__dict__.get("latent_stats_") or (0.0, 1.0)
        comps["latent_raw"] = raw
        comps["latent"] = lambda: (raw() - center) / scale
        return comps

    def _default_composer(self):
        return WeightedSum({"latent": 1.0})

    def _fit_extra(self, Xt):
        # after training, before the training data is scored: the latent score's normalisation
        # comes from the data fit was given (its held-out slice where there is one), never from the
        # data being scored
        self.latent_stats_ = self._fit_latent_stats(Xt)

    def _fit_latent_stats(self, Xt):
        bs = int(self.score_batch_size)
        raws = []
        with self._score_context():
            for start in range(0, Xt.shape[0], bs):
                x = Xt[start:start + bs].to(self.device_)
                raws.append(self._latent_raw(x, self._invert(x)).double().cpu())
        raw = torch.cat(raws).numpy()
        if self.score_norm == "robust":
            center = float(np.median(raw))
            scale = float(1.4826 * np.median(np.abs(raw - center)))
        elif self.score_norm == "minmax":
            center, scale = float(raw.min()), float(raw.max() - raw.min())
        else:
            center, scale = 0.0, 1.0
        if not (np.isfinite(scale) and scale > 1e-12):
            scale = 1.0
        return (center, scale)

    def _extra_state(self):
        return {**super()._extra_state(), "latent_stats": list(self.latent_stats_)}

    def _load_extra_state(self, state):
        super()._load_extra_state(state)
        stats = state["latent_stats"]
        if not (isinstance(stats, list) and len(stats) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stats)
                and all(abs(v) <= 3e38 for v in stats) and stats[1] > 0):  # fit's scale is > 1e-12: 0 would score every sample inf
            raise ValueError(f"latent_stats {str(stats)[:60]} is not a centre and a positive scale")
        self.latent_stats_ = tuple(float(v) for v in stats)
