"""TadGAN (Geiger et al. 2020): time-series anomaly detection with a cycle-consistent GAN.

An encoder E maps a window x to z, a generator G maps z back; two critics judge realism in
both spaces: Cx on windows (real x vs G(z)) and Cz on codes (prior z vs E(x)); a cycle term
``cycle_weight · ‖x − G(E(x))‖²`` keeps the reconstruction close. The anomaly score combines a
reconstruction error (point-wise, or DTW as in the paper) with the critic's judgement of x,
each standardised on the held-out windows (the training windows where there is no held-out
slice; z-score clipped at 0, plus 1), by product
(``score_combination='mult'``, the paper's default) or convex sum with weight ``alpha``.

Geiger A., Liu D., Alnegheimish S., Cuesta-Infante A., Veeramachaneni K. TadGAN: Time Series
Anomaly Detection Using Generative Adversarial Networks. IEEE Big Data 2020 (arXiv:2009.07769).

Differences from the paper (stated, not hidden): the LSTMs are one-directional (ganad's
``lstm`` family; the paper uses bidirectional LSTMs), the critic Cx is ganad's LSTM critic
(``net='lstm'``) or conv1d critic (``net='conv1d'``) instead of a 1-D CNN + dense stack,
and the critic score is not KDE-smoothed over time (the series wrapper's per-point mean over
overlapping windows plays that role).
"""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch

from ganad.detectors.base import COMMON_PARAMS, params_with_defaults
from ganad.detectors.encoder_base import ENCODER_PARAMS, EncoderDetector, store_params
from ganad.nets import build_discriminator, build_encoder, build_generator
from ganad.params import Param, options, real
from ganad.scoring import components as C
from ganad.scoring.composition import WeightedSum
from ganad.training.adversarial import frozen, make_optimizer
from ganad.training.loop import Stage
from ganad.training.objectives import d_loss, g_loss, gradient_penalty, lazy_weight, wmean

REC_ERRORS = ("point", "dtw")
#: TadGAN's own parameters, and its defaults where they differ from ALAD's (after Geiger et al.)
_OWN = {"cycle_weight": 10.0, "rec_error": "point", "score_combination": "mult", "alpha": 0.5}
_DEFAULTS = {"latent_dim": 20, "objective": "wgan-gp", "n_critic": 5, "spectral_norm": False, "lr_g": 5e-4, "lr_d": 5e-4,
             "betas": (0.5, 0.9)}


def _signature() -> inspect.Signature:
    """TadGAN takes every parameter ALAD takes (the common and the encoder parameters of this
    version of ganad, with the same names), TadGAN's defaults, and its own four; scikit-learn
    reads the parameter names from this signature."""
    from ganad.detectors.alad import ALAD
    ps = [p.replace(default=_DEFAULTS[p.name]) if p.name in _DEFAULTS else p for p in inspect.signature(ALAD.__init__).parameters.values()]
    ps += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in _OWN.items()]
    return inspect.Signature(ps)
COMBINATIONS = ("mult", "sum", "rec", "critic")


class TadGAN(EncoderDetector):
    __doc__ = f"""TadGAN: LSTM E and G with cycle consistency, critics Cx (windows) and Cz (codes); score = reconstruction x critic.

    Parameters
    ----------
    TadGAN's defaults differ from ALAD's (after Geiger et al.): ``latent_dim=20``,
    ``objective='wgan-gp'``, ``n_critic=5``, ``spectral_norm=False``, ``lr_g=lr_d=5e-4``,
    ``betas=(0.5, 0.9)``.

    {params_with_defaults(COMMON_PARAMS, latent_dim=20, n_critic=5, lr_g=5e-4, lr_d=5e-4, betas=(0.5, 0.9))}
    {ENCODER_PARAMS}
    cycle_weight : float, default 10.0
        Weight of the cycle-consistency term ‖x − G(E(x))‖² in the E/G loss (the paper's 10).
    rec_error : {{'point', 'dtw'}}, default 'point'
        Reconstruction error in the score: mean |x − x̂|, or the soft-DTW divergence of x and x̂.
    score_combination : {{'mult', 'sum', 'rec', 'critic'}}, default 'mult'
        How the two standardised scores combine: product, (1 − alpha)·critic + alpha·rec, or one alone.
    alpha : float, default 0.5
        Weight of the reconstruction error in ``'sum'``.

    ``net='auto'`` means LSTM networks for series windows (n, channels, length), as in the paper
    (mlp for vectors, dcgan for images, so TadGAN runs wherever the other methods do). Training history: ``tadgan/cx_loss``,
    ``tadgan/cz_loss``, ``tadgan/ge_loss``, ``tadgan/cycle``. Score components: ``tadgan``
    (the combined score, the method's own; ``decision_function`` blends it with the ``knn`` component,
    ``knn_weight='auto'`` = 0.75), ``rec_error``, ``critic`` (−Cx(x)), ``residual``, ``latent_norm``.
    """

    _networks = ("G", "E", "Cx", "Cz")
    #: the family net='auto' builds for series windows (the paper's LSTMs; conv1d on request), read by
    #: _build_networks and by ganad.tune's width choices
    _series_family = "lstm"
    _knn_space_auto = "code"
    _robust_proxy_kind = "encoder"
    _robust_proxy_kinds = ("encoder", "generated")

    def __init__(self, **params):
        bound = type(self).__init__.__signature__.bind(self, **params)  # TypeError on an unknown parameter
        bound.apply_defaults()
        store_params(self, dict(bound.arguments))

    __init__.__signature__ = _signature()  # type: ignore[attr-defined]

    _parameter_constraints = {
        "knn_space": Param(options("auto", "code", "input"), why=", but TadGAN's critic Cx has no feature layer the knn component could compare: its knn component compares codes E(x) or the input",
                           fix="use 'auto', 'code' or 'input' for TadGAN"),
        "rec_error": Param(options(*REC_ERRORS), fix=f"use one of {', '.join(REC_ERRORS)}"),
        "score_combination": Param(options(*COMBINATIONS), fix=f"use one of {', '.join(COMBINATIONS)}"),
        "alpha": Param(real(0, 1), fix="pass a weight between 0 and 1"),
        "cycle_weight": Param(real(0), fix="pass a weight >= 0 such as 10"),
    }

    def _build_networks(self):
        if self.net == "auto" and len(self.data_shape_) == 2:
            self.family_ = self._series_family
        fam, shape, d = self.family_, self.data_shape_, self.latent_dim
        w, k = self._width(), self._depth()
        return {"G": build_generator(fam, d, shape, w, k, self._out_act()),
                "E": build_encoder(fam, shape, d, w, k),
                "Cx": self._build_discriminator(fam, shape, w, k),
                "Cz": build_discriminator("mlp", (d,), w, 2, self.spectral_norm, -1)}

    def _search_D(self):
        return None

    def _stages(self, generator):
        G, E, Cx, Cz = (self.nets_[k] for k in ("G", "E", "Cx", "Cz"))
        opt_c = make_optimizer(list(Cx.parameters()) + list(Cz.parameters()), self.lr_d, self.betas)
        opt_ge = make_optimizer(list(G.parameters()) + list(E.parameters()), self.lr_g, self.betas)
        prior, d, obj = self.prior_, self.latent_dim, self.objective
        n_critic, gp_w, cyc, gp_every = int(self.n_critic), float(self.gp_weight), float(self.cycle_weight), int(self.gp_every)
        state = {"i": 0}

        def step(x, w):
            n = x.shape[0]
            z = prior.sample(n, d, generator=generator).to(x.device)
            ge_step = (state["i"] + 1) % n_critic == 0
            # E and G do not change until their own step: on a step that has one, G(z) and E(x) are
            # computed once, with gradients, and serve both steps (the critics' step sees them detached)
            with contextlib.nullcontext() if ge_step else torch.no_grad():
                x_fake_g = G(z)
                z_enc = E(x)
            x_fake, z_fake = x_fake_g.detach(), z_enc.detach()
            # two forwards each (one of real and fake stacked is slower for the LSTM critic: 1.08x, measured)
            lx = d_loss(obj, Cx(x)[0], Cx(x_fake)[0], w)
            lz = d_loss(obj, Cz(z)[0], Cz(z_fake)[0], None, w)  # the prior's codes unweighted, E(x)'s weighted as x is
            gp_k = lazy_weight(gp_w, gp_every, state["i"])
            if obj == "wgan-gp" and gp_k > 0:
                lx = lx + gp_k * gradient_penalty(Cx, x, x_fake, generator)
                lz = lz + gp_k * gradient_penalty(Cz, z, z_fake, generator)
            opt_c.zero_grad(set_to_none=True)
            (lx + lz).backward()
            opt_c.step()
            state["i"] += 1
            if ge_step:
                x_rec = G(z_enc)
                per = (x - x_rec).square().flatten(1).mean(1)
                cycle = wmean(per, w)
                with frozen(Cx, Cz):  # gradients for E and G only
                    loss = g_loss(obj, Cx(x_fake_g)[0]) + g_loss(obj, Cz(z_enc)[0], w) + cyc * cycle
                opt_ge.zero_grad(set_to_none=True)
                loss.backward()
                opt_ge.step()
                state["ge"], state["cycle"] = loss.detach(), cycle.detach()
            zero = torch.zeros((), device=x.device)
            return {"cx_loss": lx.detach(), "cz_loss": lz.detach(), "ge_loss": state.get("ge", zero), "cycle": state.get("cycle", zero)}

        return [Stage("tadgan", self.epochs, step, modules=[G, E, Cx, Cz], optimizers=[opt_c, opt_ge], state=state)]

    # ------------------------------------------------------------------ score
    def _scoring_key(self) -> dict:
        # read when a window is scored; tadgan_stats_ (fitted on the reconstruction error of fit's rec_error)
        # and threshold_ go with the values fit or calibrate saw
        return {**super()._scoring_key(), "rec_error": self.rec_error, "score_combination": self.score_combination,
                "alpha": self.alpha}

    def _rec_error(self, x, x_hat):
        if self.rec_error == "dtw":
            from ganad.inversion.soft_dtw import soft_dtw_divergence
            return soft_dtw_divergence(x, x_hat)
        return C.residual(x, x_hat, 1)

    def _critic(self, x):
        return -self._inference_net("Cx")(x)[0].reshape(-1)

    def _combine(self, rec, crit):
        st = self.__dict__.get("tadgan_stats_") or (0.0, 1.0, 0.0, 1.0)
        zr = (rec - st[0]) / st[1]
        zc = (crit - st[2]) / st[3]
        zr, zc = zr.clamp_min(0) + 1, zc.clamp_min(0) + 1
        if self.score_combination == "mult":
            return zr * zc
        if self.score_combination == "sum":
            return (1 - self.alpha) * zc + self.alpha * zr
        return zr if self.score_combination == "rec" else zc

    def _components(self, x, inv):
        x_hat, z = inv["x_hat"], inv["z"]
        memo = {}

        def rec():
            if "rec" not in memo:
                memo["rec"] = self._rec_error(x, x_hat)
            return memo["rec"]

        def crit():
            if "crit" not in memo:
                memo["crit"] = self._critic(x)
            return memo["crit"]

        return {"tadgan": lambda: self._combine(rec(), crit()), "rec_error": rec, "critic": crit,
                "residual": lambda: C.residual(x, x_hat, 1),
                "latent_norm": lambda: C.latent_norm_deviation(z, self.prior_.norm_mode(self.latent_dim))}

    def _default_composer(self):
        return WeightedSum({"tadgan": 1.0})

    def _twin_components(self) -> set[str]:
        # rec_error='point' is the residual itself: a composition over all components counts it once
        return {"rec_error"} if self.rec_error == "point" else set()

    def _fit_extra(self, Xt):
        # the standardisation of both scores comes from the data fit was given, never from the data being
        # scored: its held-out slice where there is one (windows the networks did not train on), else the
        # training windows
        bs = int(self.score_batch_size)
        recs, crits = [], []
        with self._score_context():
            for s in range(0, Xt.shape[0], bs):
                x = Xt[s:s + bs].to(self.device_)
                inv = self._invert(x)
                recs.append(self._rec_error(x, inv["x_hat"]).double().cpu())
                crits.append(self._critic(x).double().cpu())
        r, c = torch.cat(recs).numpy(), torch.cat(crits).numpy()
        sd = [float(v.std()) if np.isfinite(v.std()) and v.std() > 1e-12 else 1.0 for v in (r, c)]
        self.tadgan_stats_ = (float(r.mean()), sd[0], float(c.mean()), sd[1])

    def _extra_state(self):
        return {**super()._extra_state(), "tadgan_stats": list(self.tadgan_stats_)}

    def _load_extra_state(self, state):
        super()._load_extra_state(state)
        stats = tuple(float(v) for v in state["tadgan_stats"])
        if len(stats) != 4 or not all(abs(v) <= 3e38 for v in stats) or min(stats[1], stats[3]) <= 0:  # fit's sds are > 1e-12
            raise ValueError(f"tadgan_stats {str(state['tadgan_stats'])[:60]} is not two means and two positive standard deviations")
        self.tadgan_stats_ = stats
