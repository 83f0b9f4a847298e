"""EGBAD / BiGAN (Zenati et al. 2018; Donahue et al. 2017): generator G, encoder E and a joint
discriminator D(x, z) trained together; D sees (x, E(x)) as real and (G(z), z) as fake.

Zenati H., Foo C. S., Lecouat B., Manek G., Chandrasekhar V. R. Efficient GAN-based anomaly
detection. ICLR 2018 workshop (arXiv:1802.06222).
Donahue J., Krähenbühl P., Darrell T. Adversarial feature learning. ICLR 2017.
"""

from __future__ import annotations

import contextlib

import torch

from ganad.detectors.base import COMMON_PARAMS, method_init
from ganad.detectors.encoder_base import ENCODER_PARAMETERS, ENCODER_PARAMS, EncoderDetector, adv_losses, joint_gradient_penalty
from ganad.nets import build_encoder, build_generator
from ganad.nets.joint import JointDiscriminator
from ganad.params import Param, options, real
from ganad.scoring import components as C
from ganad.scoring.composition import residual_feature_composer
from ganad.training.adversarial import d_pair, frozen, make_optimizer
from ganad.training.loop import Stage
from ganad.training.objectives import lazy_weight


class BiGAN(EncoderDetector):
    __doc__ = f"""EGBAD / BiGAN: G, E and a joint D(x, z) trained together; own score (1-λ)·residual + λ·feature matching,
    blended with the ``knn`` component in ``decision_function`` (``knn_weight='auto'`` = 0.75; docs/methods.md).

    Parameters
    ----------
    {COMMON_PARAMS}
    {ENCODER_PARAMS}
    lam : float, default 0.1
        λ of the own score (1 − λ)·Σ|x − G(E(x))| + λ·Σ|f(x, E(x)) − f(G(E(x)), E(x))|, sums over the
        elements of x and the joint discriminator's features as in Zenati et al. (α = 1 − λ = 0.9);
        see docs/methods.md.

    Score components: ``residual`` (mean |x − G(E(x))|), ``feature`` (joint-discriminator feature
    matching), ``discriminator`` (−log σ D(G(E(x)), E(x))), ``latent_norm``.
    """

    _networks = ("G", "E", "D")
    _knn_space_auto = "code"

    _robust_proxy_kind = "encoder"  # E trains jointly with G
    _robust_proxy_kinds = ("encoder", "generated")  # the joint D(x, z) cannot judge x alone

    __init__ = method_init(ENCODER_PARAMETERS, lam=0.1)

    _parameter_constraints = {  # D(x, z) matches features on its joint layer only
        "knn_space": Param(options("auto", "code", "input"), why=", but BiGAN's D(x, z) does not judge x alone: its knn component compares codes E(x) or the input",
                           fix="use 'auto', 'code' or 'input' for BiGAN"),
        "feature_layer": Param(options(-1), why=", but BiGAN's D(x, z) takes its features from its joint layer, so the setting would be ignored",
                               fix="leave feature_layer at -1 for BiGAN"),
        "search_feature_weight": Param(real(0, 0), why=", but BiGAN's D(x, z) does not judge x alone: the search has no features of x to match, so the weight would be ignored",
                                       fix="leave search_feature_weight at 0 for BiGAN"),
        "lam": Param(real(0, 1), fix="pass a weight in [0, 1] such as 0.1 (0 = the residual only)"),
    }

    def _build_networks(self):
        fam, shape, d = self.family_, self.data_shape_, self.latent_dim
        w, k = self._width(), self._depth()
        return {"G": build_generator(fam, d, shape, w, k, self._out_act()),
                "E": build_encoder(fam, shape, d, w, k),
                "D": JointDiscriminator(fam, shape, d, w, k, self.spectral_norm)}

    def _stages(self, generator):
        G, E, D = self.nets_["G"], self.nets_["E"], self.nets_["D"]
        opt_ge = make_optimizer(list(G.parameters()) + list(E.parameters()), self.lr_g, self.betas)
        opt_d = make_optimizer(D.parameters(), self.lr_d, self.betas)
        prior, d, obj = self.prior_, self.latent_dim, self.objective
        n_critic, gp_w, gp_every = int(self.n_critic), float(self.gp_weight), int(self.gp_every)
        state = {"i": 0}

        def step(x, w):
            n = x.shape[0]
            z = prior.sample(n, d, generator=generator).to(x.device)
            ge_step = (state["i"] + 1) % n_critic == 0
            # E and G do not change until their own step: on a step that has one, E(x) and G(z) are
            # computed once, with gradients, and serve both steps (D's step sees them detached)
            with contextlib.nullcontext() if ge_step else torch.no_grad():
                z_enc_g, x_gen_g = E(x), G(z)
            z_enc, x_gen = z_enc_g.detach(), x_gen_g.detach()
            (real, _), (fake, _) = d_pair(D, (x, z_enc), (x_gen, z))
            loss_d, _ = adv_losses(obj, real, fake, w)
            out = {}
            gp_k = lazy_weight(gp_w, gp_every, state["i"])
            if obj == "wgan-gp" and gp_k > 0:
                gp = joint_gradient_penalty(D, (x, z_enc), (x_gen, z), generator)
                loss_d = loss_d + gp_k * gp
                state["gp_last"] = gp.detach()
            if obj == "wgan-gp" and gp_w > 0:
                out["gp"] = state.get("gp_last", torch.zeros((), device=x.device))  # a lazy step without the penalty reports the last one (gp_every)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            out["d_loss"] = loss_d.detach()
            state["i"] += 1
            if ge_step:
                with frozen(D):  # gradients for E and G only
                    (real, _), (fake, _) = d_pair(D, (x, z_enc_g), (x_gen_g, z))
                _, loss_ge = adv_losses(obj, real, fake, w)  # (x, E(x)) weighted; (G(z), z) is from the prior
                opt_ge.zero_grad(set_to_none=True)
                loss_ge.backward()
                opt_ge.step()
                state["ge"] = loss_ge.detach()
            out["ge_loss"] = state.get("ge", torch.zeros((), device=x.device))
            return out

        return [Stage("bigan", self.epochs, step, modules=[G, E, D], optimizers=[opt_d, opt_ge], state=state,
                      collapse="d_loss" if obj == "bce" else None)]

    def _components(self, x, inv):
        D = self._inference_net("D")
        z, x_hat = inv["z"], inv["x_hat"]
        memo = {}

        def d(key):  # the joint discriminator of (x, z) and (x̂, z), each computed once, when needed
            if key not in memo:
                memo[key] = D(x if key == "x" else x_hat, z)
            return memo[key]

        return {
            "residual": lambda: C.residual(x, x_hat, 1),
            "feature": lambda: C.feature_matching(d("x")[1], d("x_hat")[1]),
            "discriminator": lambda: C.discriminator_ce(d("x_hat")[0]),
            "latent_norm": lambda: C.latent_norm_deviation(z, self.prior_.norm_mode(self.latent_dim)),
        }

    def _feature_size(self) -> int:
        """n_f: features per sample of the joint discriminator's feature layer."""
        with torch.no_grad():
            _, f = self._inference_net("D")(torch.zeros((2,) + tuple(self.data_shape_), device=self.device_),
                                            torch.zeros(2, self.latent_dim, device=self.device_))
        return int(f[0].numel())

    def _default_composer(self):
        return residual_feature_composer(self.lam, self.n_features_in_, self._feature_size())


#: the name used by Zenati et al. 2018
EGBAD = BiGAN
