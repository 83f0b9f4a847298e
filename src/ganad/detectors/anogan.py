"""AnoGAN (Schlegl et al. 2017): a GAN trained on normal data, inverted by latent search.

Schlegl T., Seeböck P., Waldstein S., Schmidt-Erfurth U., Langs G. Unsupervised anomaly
detection with generative adversarial networks to guide marker discovery. IPMI 2017.
"""

from __future__ import annotations

import torch

from ganad.detectors.base import COMMON_PARAMS, BaseGANDetector, method_init
from ganad.inversion.latent_search import SEARCH_CONSTRAINTS, LatentSearch, check_search_params
from ganad.params import Param, options, real
from ganad.scoring.composition import residual_feature_composer
from ganad.training.adversarial import gan_stage

SEARCH_SETTINGS = ("custom", "schlegl")


class AnoGAN(BaseGANDetector):
    __doc__ = f"""AnoGAN: GAN on normal data + per-sample latent search; own score (1-λ)·residual + λ·feature matching.

    ``decision_function`` reads the ``knn`` component by default (the distance of D's features and of
    the input to the training samples', no search; ``knn_weight='auto'`` = 1.0): the own score, ``lam``
    and the search count only with ``knn_weight`` < 1 (docs/methods.md).

    Parameters
    ----------
    {COMMON_PARAMS}
    lam : float, default 0.1
        λ of the own score (1 − λ)·Σ|x − x̂| + λ·Σ|f(x) − f(x̂)|, sums over the elements of x and the
        discriminator features as in Schlegl et al. (the default composer weights the mean
        components ``residual`` and ``feature`` by (1 − λ)·n_x and λ·n_f; docs/methods.md).
    search : {{'custom', 'schlegl'}}, default 'custom'
        'custom': the latent search as set by the ``search_*`` parameters. 'schlegl': Schlegl et
        al. 2017's mapping: L1 residual plus λ = ``lam`` feature matching in the search loss (sums),
        ``search_n_max`` steps for every sample (no early stop; ``search_distance``,
        ``search_eps`` and ``search_feature_weight`` are ignored), restarts kept by that loss.
    search_distance : {{'l2', 'l1', 'rbf', 'dtw'}}, default 'l2'
        Distance d(x, G(z)) the latent search minimises (mean over features; 'dtw': batched soft-DTW for series, see docs/series.md).
    search_eps : float, default 0.005
        Target similarity ε: a sample stops as soon as d < ε.
    search_n_max : int, default 500
        Iteration cap per sample.
    search_lr : float, default 0.05
        Adam learning rate of the search.
    search_restarts : int, default 1
        Initial codes per sample; the best is kept.
    search_feature_weight : float, default 0.0
        Weight λ of discriminator feature matching inside the search loss
        (1 − λ)·Σ d + λ·Σ|f(x) − f(G(z))| (Schlegl's λ in the mapping loss; 0 = distance only,
        twice as fast).

    Attributes
    ----------
    decision_scores_, threshold_, labels_ : training scores, threshold and labels (PyOD vocabulary).
    history_ : dict of per-epoch mean losses.
    nets_ : the trained networks (G, D).
    """

    _networks = ("G", "D")
    _score_context = staticmethod(torch.no_grad)

    __init__ = method_init(lam=0.1, search_distance='l2', search_eps=0.005, search_n_max=500, search_lr=0.05, search_restarts=1,
                           search_feature_weight=0.0, search='custom')

    # no encoder: the kNN component compares discriminator features f(x)
    _knn_space_legacy = "feature"
    # 'auto' = the features' and the input's distances together at weight 1 (twentieth session): chosen
    # on held-out DS1 records and the MNIST training split over the features' distance blended with the
    # latent search's score at 0.75 (mean AUROC 0.928 against 0.910; the search's score alone 0.619);
    # the search still gives the score components, the anomaly map and the reconstruction
    _knn_space_auto = "feature+input"

    def _stages(self, generator):
        G, D = self.nets_["G"], self.nets_["D"]
        return [gan_stage(G, D, self.prior_, latent_dim=self.latent_dim, objective=self.objective, epochs=self.epochs,
                          lr_g=self.lr_g, lr_d=self.lr_d, betas=self.betas, n_critic=self.n_critic,
                          gp_weight=self.gp_weight, gp_every=self.gp_every, generator=generator)]

    _parameter_constraints = {
        "knn_space": Param(options("auto", "feature", "input", "feature+input"),
                           why=", but AnoGAN has no encoder: its knn component compares the discriminator's features, the input or both",
                           fix="use 'auto', 'feature', 'input' or 'feature+input' for AnoGAN"),
        "search": Param(options(*SEARCH_SETTINGS),
                        fix="use 'custom' (the search_* parameters) or 'schlegl' (L1 + λ feature matching, Schlegl et al. 2017)"),
        "lam": Param(real(0, 1), fix="pass a weight in [0, 1] such as 0.1 (0 = the residual only)"),
        **SEARCH_CONSTRAINTS,
    }

    def latent_search(self) -> LatentSearch:
        check_search_params(self, "search", "lam")  # also a value set after fit
        if self.search == "schlegl":  # Schlegl et al. 2017: L1 residual + λ feature matching, Γ steps
            return LatentSearch(distance="l1", eps=0.0, n_max=self.search_n_max, lr=self.search_lr,
                                restarts=self.search_restarts, feature_weight=float(self.lam))
        return LatentSearch(distance=self.search_distance, eps=self.search_eps, n_max=self.search_n_max,
                            lr=self.search_lr, restarts=self.search_restarts, feature_weight=self.search_feature_weight)

    def _scoring_key(self) -> dict:
        # every score is a search: its setting ('schlegl' searches with λ = lam) as well as the search_* values
        return {**super()._scoring_key(), "search": self.search, **({"lam": self.lam} if self.search == "schlegl" else {})}

    def _search_init(self, x):
        return None  # encoder methods may warm-start the search from E(x)

    def _invert(self, x):
        r = self.latent_search().run(self._inference_net("G"), x, self.prior_, latent_dim=self.latent_dim,
                                     D=self._inference_net("D"), z0=self._search_init(x), seed=self.seed_)
        return {"z": r.z, "x_hat": r.x_hat, "iterations": r.iterations, "search_distance": r.distance}

    def _feature_size(self) -> int:
        """n_f: discriminator features per sample (the layer feature matching uses)."""
        with torch.no_grad():
            _, f = self._inference_net("D")(torch.zeros((2,) + tuple(self.data_shape_), device=self.device_))
        return int(f[0].numel())

    def _default_composer(self):
        return residual_feature_composer(self.lam, self.n_features_in_, self._feature_size())
