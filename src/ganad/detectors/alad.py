"""ALAD, adversarially learned anomaly detection (Zenati et al. 2018): a bidirectional GAN with
three spectrally normalised discriminators, Dxz(x, z) as in BiGAN plus Dxx(x, x') and Dzz(z, z')
that enforce cycle consistency x ≈ G(E(x)) and z ≈ E(G(z)).

Zenati H., Romain M., Foo C. S., Lecouat B., Chandrasekhar V. Adversarially learned anomaly
detection. IEEE ICDM 2018 (arXiv:1812.02288).
"""

from __future__ import annotations

import contextlib

import torch

from ganad.detectors.base import COMMON_PARAMS, method_init
from ganad.detectors.encoder_base import ENCODER_PARAMETERS, ENCODER_PARAMS, EncoderDetector, adv_losses, joint_gradient_penalty
from ganad.nets import build_encoder, build_generator
from ganad.nets.joint import JointDiscriminator, LatentPairDiscriminator, PairDiscriminator
from ganad.params import Param, options, real
from ganad.scoring import components as C
from ganad.scoring.composition import WeightedSum
from ganad.training.adversarial import frozen, make_optimizer, pair_logits
from ganad.training.loop import Stage
from ganad.training.objectives import lazy_weight


class ALAD(EncoderDetector):
    __doc__ = f"""ALAD: G, E, Dxz, Dxx, Dzz with cycle consistency; score = L1 distance of Dxx features of (x, x) and (x, G(E(x))).

    Parameters
    ----------
    {COMMON_PARAMS}
    {ENCODER_PARAMS}
    spectral_norm : bool, default True
        Spectral normalisation on the three discriminators (ALAD's choice).

    Training history: ``alad/d_loss``, ``alad/ge_loss`` and the cycle-consistency errors
    ``alad/cycle_x`` (mean |x − G(E(x))|) and ``alad/cycle_z`` (mean |z − E(G(z))|), recorded, not optimised directly.
    Score components: ``dxx_feature`` (the ALAD score), ``residual``, ``latent_norm``.
    """

    _networks = ("G", "E", "Dxz", "Dxx", "Dzz")
    _knn_space_auto = "code"

    _robust_proxy_kind = "encoder"  # E trains jointly with G
    _robust_proxy_kinds = ("encoder", "generated")  # no discriminator of x alone

    __init__ = method_init(ENCODER_PARAMETERS, spectral_norm=True)

    _parameter_constraints = {
        "knn_space": Param(options("auto", "code", "input"), why=", but ALAD's discriminators judge pairs, not x alone: its knn component compares codes E(x) or the input",
                           fix="use 'auto', 'code' or 'input' for ALAD"),
        "search_feature_weight": Param(real(0, 0), why=", but ALAD's discriminators judge pairs, not x alone: the search has no features of x to match, so the weight would be ignored",
                                       fix="leave search_feature_weight at 0 for ALAD"),
    }

    def _build_networks(self):
        fam, shape, d = self.family_, self.data_shape_, self.latent_dim
        w, k, sn = self._width(), self._depth(), self.spectral_norm
        return {"G": build_generator(fam, d, shape, w, k, self._out_act()),
                "E": build_encoder(fam, shape, d, w, k),
                "Dxz": JointDiscriminator(fam, shape, d, w, k, sn),
                "Dxx": PairDiscriminator(fam, shape, w, k, sn, -1 if self.feature_layer == "auto" else self.feature_layer),
                "Dzz": LatentPairDiscriminator(d, w, sn)}

    def _search_D(self):
        return None

    def _stages(self, generator):
        G, E = self.nets_["G"], self.nets_["E"]
        Dxz, Dxx, Dzz = self.nets_["Dxz"], self.nets_["Dxx"], self.nets_["Dzz"]
        opt_ge = make_optimizer(list(G.parameters()) + list(E.parameters()), self.lr_g, self.betas)
        opt_d = make_optimizer(list(Dxz.parameters()) + list(Dxx.parameters()) + list(Dzz.parameters()), self.lr_d, self.betas)
        prior, d, obj = self.prior_, self.latent_dim, self.objective
        n_critic, gp_w, gp_every = int(self.n_critic), float(self.gp_weight), int(self.gp_every)
        state = {"i": 0}

        def step(x, w):
            n = x.shape[0]
            z = prior.sample(n, d, generator=generator).to(x.device)
            ge_step = (state["i"] + 1) % n_critic == 0
            # E and G do not change until their own step: on a step that has one, their four outputs
            # are computed once, with gradients, and serve both steps (the discriminators' step sees
            # them detached)
            with contextlib.nullcontext() if ge_step else torch.no_grad():
                z_enc_g = E(x)
                x_gen_g = G(z)
                x_rec_g = G(z_enc_g)
                z_rec_g = E(x_gen_g)
            z_enc, x_gen, x_rec, z_rec = (t.detach() for t in (z_enc_g, x_gen_g, x_rec_g, z_rec_g))
            l_xz, _ = adv_losses(obj, *pair_logits(Dxz, (x, z_enc), (x_gen, z)), w)
            l_xx, _ = adv_losses(obj, *pair_logits(Dxx, (x, x), (x, x_rec)), w, w)  # both pairs come from x
            l_zz, _ = adv_losses(obj, *pair_logits(Dzz, (z, z), (z, z_rec)))  # prior codes only: unweighted
            loss_d = l_xz + l_xx + l_zz
            out = {}
            gp_k = lazy_weight(gp_w, gp_every, state["i"])
            if obj == "wgan-gp" and gp_k > 0:
                gp = (joint_gradient_penalty(Dxz, (x, z_enc), (x_gen, z), generator)
                      + joint_gradient_penalty(Dxx, (x, x), (x, x_rec), generator)
                      + joint_gradient_penalty(Dzz, (z, z), (z, z_rec), generator))
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
                z_enc, x_gen, x_rec, z_rec = z_enc_g, x_gen_g, x_rec_g, z_rec_g
                with frozen(Dxz, Dxx, Dzz):  # gradients for E and G only
                    _, g_xz = adv_losses(obj, *pair_logits(Dxz, (x, z_enc), (x_gen, z)), w)
                    _, g_xx = adv_losses(obj, *pair_logits(Dxx, (x, x), (x, x_rec)), w, w)
                    _, g_zz = adv_losses(obj, *pair_logits(Dzz, (z, z), (z, z_rec)))
                loss_ge = g_xz + g_xx + g_zz
                opt_ge.zero_grad(set_to_none=True)
                loss_ge.backward()
                opt_ge.step()
                state["ge"] = loss_ge.detach()
                state["cx"] = (x - x_rec).abs().mean().detach()
                state["cz"] = (z - z_rec).abs().mean().detach()
            zero = torch.zeros((), device=x.device)
            out["ge_loss"] = state.get("ge", zero)
            out["cycle_x"] = state.get("cx", zero)
            out["cycle_z"] = state.get("cz", zero)
            return out

        return [Stage("alad", self.epochs, step, modules=[G, E, Dxz, Dxx, Dzz], optimizers=[opt_d, opt_ge], state=state)]

    def _components(self, x, inv):
        z, x_hat = inv["z"], inv["x_hat"]

        def dxx_feature():
            Dxx = self._inference_net("Dxx")
            return (Dxx(x, x)[1] - Dxx(x, x_hat)[1]).abs().flatten(1).sum(1)

        return {
            "dxx_feature": dxx_feature,
            "residual": lambda: C.residual(x, x_hat, 1),
            "latent_norm": lambda: C.latent_norm_deviation(z, self.prior_.norm_mode(self.latent_dim)),
        }

    def _default_composer(self):
        return WeightedSum({"dxx_feature": 1.0})
