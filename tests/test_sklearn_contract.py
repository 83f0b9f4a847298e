"""scikit-learn's estimator checks on every detector (small settings so every check trains quickly)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from ganad import ALAD, VAEGAN, AnoGAN, BiGAN, FAnoGAN, GANomaly

SMALL = dict(epochs=2, latent_dim=4, width=16, random_state=0)

# every skipped check with its reason
COMMON_EXPECTED_FAILED = {
    "check_methods_subset_invariance": "the default score standardises each part by its median / MAD on the held-out slice "
                                       "(KnnBlend); float32 matmul round-off that depends on the batch size (~1e-7 relative, "
                                       "MKL picks kernels by row count) is scaled by 1/MAD to ~5e-7, above the check's 1e-7. "
                                       "Batch independence itself is tested with rtol=1e-5 in test_scoring.py",
    # ganad declares itself an outlier detector (is_outlier_detector(det) is True), which adds these
    # two checks; both assert scikit-learn's label convention (predict: -1 = outlier, +1 = inlier;
    # decision_function >= 0 for inliers, = score_samples - offset_). ganad follows PyOD's: predict
    # 0 = normal / 1 = anomaly, decision_function higher = more anomalous (tests/test_conventions.py)
    "check_outliers_fit_predict": "asserts scikit-learn's labels {-1, +1}; ganad's predict / fit_predict return PyOD's {0, 1}",
    "check_outliers_train": "asserts scikit-learn's labels {-1, +1} and decision_function >= 0 for inliers; ganad follows PyOD "
                            "(labels {0, 1}, higher score = more anomalous)",
    "check_dtype_object": "ganad rejects object arrays holding non-numbers with its own InputError (a ValueError) that names "
                          "the input and the fix; the check wants a TypeError carrying numpy's own message",
}
EXPECTED_FAILED = {
    "ALAD": {
        "check_methods_subset_invariance": "scores differ by one float32 ulp (~2e-7 relative) between batch sizes: MKL picks "
                                           "different matmul kernels for different row counts; the check's rtol is 1e-7. "
                                           "Batch independence itself is tested with rtol=1e-5 in test_scoring.py",
    },
    "GANomaly": {
        "check_methods_subset_invariance": "GANomaly's score subtracts two nearly equal codes, ‖E(x) − E′(G(E(x)))‖², and divides "
                                           "by the training MAD: float32 matmul round-off that depends on the batch size "
                                           "(~1e-7) is amplified to ~1e-3 relative, above the check's tolerance",
    },
}


@parametrize_with_checks(
    [AnoGAN(search_n_max=10, **SMALL), FAnoGAN(**SMALL), BiGAN(**SMALL), ALAD(**SMALL), GANomaly(**SMALL), VAEGAN(**SMALL)],
    expected_failed_checks=lambda est: {**COMMON_EXPECTED_FAILED, **EXPECTED_FAILED.get(type(est).__name__, {})},
)
def test_sklearn_contract(estimator, check):
    check(estimator)
