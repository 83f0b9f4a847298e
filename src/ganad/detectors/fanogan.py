"""f-AnoGAN (Schlegl et al. 2019): a WGAN-GP trained on normal data, then an encoder trained
with the GAN frozen (izi_f architecture), so that inversion is one forward pass.

Schlegl T., Seeböck P., Waldstein S. M., Langs G., Schmidt-Erfurth U. f-AnoGAN: Fast
unsupervised anomaly detection with generative adversarial networks. Medical Image Analysis 54, 2019.
"""

from __future__ import annotations

from ganad.detectors.base import COMMON_PARAMS, method_init, params_with_defaults
from ganad.detectors.encoder_base import ENCODER_PARAMETERS, ENCODER_PARAMS, EncoderDetector
from ganad.params import Param, below, integer, none, real
from ganad.scoring.composition import WeightedSum
from ganad.training.adversarial import gan_stage, make_optimizer
from ganad.training.loop import Stage
from ganad.training.objectives import wmean


class FAnoGAN(EncoderDetector):
    __doc__ = f"""f-AnoGAN: WGAN-GP, then an izi_f encoder with G and D frozen; score residual + κ·feature residual.

    Training: stage ``gan`` (WGAN-GP by default, ``n_critic`` critic steps per generator step, the
    gradient penalty on every second critic step at twice its weight: ``gp_every=2``, chosen on
    validation data, docs/training.md), then
    stage ``encoder`` (``encoder_epochs`` epochs) minimising
    ‖x − G(E(x))‖² + κ·‖f(x) − f(G(E(x)))‖² (mean squared over features, f = D's feature layer).

    Parameters
    ----------
    {params_with_defaults(COMMON_PARAMS, n_critic=5, gp_every=2, lr_g=0.0001, lr_d=0.0001, betas=(0.0, 0.9))}
    {ENCODER_PARAMS}
    kappa : float, default 1.0
        κ, the weight of the discriminator-feature residual in the izi_f loss and in the score.
    encoder_epochs : int or None, default None
        Epochs of the encoder stage; None = ``epochs``.

    Score components: ``izi_residual`` (mean squared residual), ``izi_feature`` (mean squared
    feature residual), plus the generic ``residual``, ``feature``, ``discriminator``, ``latent_norm``.
    Own score: izi_residual + κ·izi_feature (weights normalised to sum to one). The method's own score; ``decision_function`` reads the ``knn`` component by default
    (``knn_weight='auto'`` = 1.0 here: the own score, and the settings above that shape it, count only
    with ``knn_weight`` < 1; docs/methods.md).
    """

    __init__ = method_init(ENCODER_PARAMETERS, objective='wgan-gp', n_critic=5, gp_every=2, lr_g=0.0001, lr_d=0.0001, betas=(0.0, 0.9), kappa=1.0,
                           encoder_epochs=None)

    _parameter_constraints = {
        "encoder_epochs": Param(none, integer(1), why=below(1, " (an untrained encoder would score nonsense)"),
                                fix="pass a positive integer, or None to use epochs"),
        "kappa": Param(real(0), fix="pass a non-negative weight of the feature residual such as 1.0 (0 = the image residual only)"),
    }

    def _stages(self, generator):
        G, D, E = self.nets_["G"], self.nets_["D"], self.nets_["E"]
        gan = gan_stage(G, D, self.prior_, latent_dim=self.latent_dim, objective=self.objective, epochs=self.epochs,
                        lr_g=self.lr_g, lr_d=self.lr_d, betas=self.betas, n_critic=self.n_critic,
                        gp_weight=self.gp_weight, gp_every=self.gp_every, generator=generator)
        opt = make_optimizer(E.parameters(), self.lr_g, self.betas)
        kappa = float(self.kappa)
        frozen = {"done": False}

        def step(x, w):
            if not frozen["done"]:  # G and D are fixed during the encoder stage (izi_f)
                for p in list(G.parameters()) + list(D.parameters()):
                    p.requires_grad_(False)
                G.eval(); D.eval()
                frozen["done"] = True
            x_hat = G(E(x))
            _, f_x = D(x)
            _, f_hat = D(x_hat)
            rec = (x - x_hat).square().flatten(1).mean(1)
            feat = (f_x - f_hat).square().mean(1)
            per = rec + kappa * feat
            loss = wmean(per, w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return {"izi_f": loss.detach(), "residual": rec.mean().detach(), "feature": feat.mean().detach()}

        n_enc = self.epochs if self.encoder_epochs is None else int(self.encoder_epochs)
        return [gan, Stage("encoder", n_enc, step, modules=[E], optimizers=[opt])]

    def _components(self, x, inv):
        comps = super()._components(x, inv)
        x_hat = inv["x_hat"]
        comps["izi_residual"] = lambda: (x - x_hat).square().flatten(1).mean(1)
        comps["izi_feature"] = lambda: (self._d_out(inv, "x", x)[1] - self._d_out(inv, "x_hat", x_hat)[1]).square().mean(1)
        return comps

    def _default_composer(self):
        return WeightedSum({"izi_residual": 1.0, "izi_feature": float(self.kappa)})
