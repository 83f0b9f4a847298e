"""Patient- (or machine-) adaptive scoring: label-free and causal.

A monitor that watches one patient for hours can learn that patient's own normal from the first
minutes of the recording. :func:`prefix_standardise` standardises each recording's scores by the
median and MAD of its own first ``n_first`` scores (in time order). No label is used, and a score
is only ever standardised with statistics of samples that came *before* it, except inside the
warm-up itself: those first ``n_first`` samples are flagged in the returned mask so that an honest
evaluation leaves them out (a monitor would show unadapted scores during its warm-up).

The pure inter-patient score stays the primary figure; the adapted one is reported beside it,
never in its place (``benchmarks/RESULTS.md``).

Example::

    from ganad.scoring.adaptive import prefix_standardise
    adapted, warm = prefix_standardise(scores, groups=record_ids, order=r_peak_samples, n_first=300)
    auroc(y[~warm], adapted[~warm])
"""

from __future__ import annotations

import numpy as np

from ganad.exceptions import InputError, _fmt
from ganad.scoring.composition import MAD_TO_STD


def prefix_standardise(scores, groups, order=None, n_first: int = 300, min_scale: float = 1e-12):
    """Standardise each group's scores by the median / MAD of its first ``n_first`` samples.

    Parameters
    ----------
    scores : (n,) anomaly scores (higher = more anomalous).
    groups : (n,) recording / patient / machine id of each score.
    order : (n,) time stamps or sample positions; None = the given order.
    n_first : warm-up length per group (e.g. 300 beats ≈ 4 minutes of ECG).

    Returns
    -------
    adapted : (n,) float64, (s − median_g) / (1.4826·MAD_g) with the group's warm-up statistics
        (a zero MAD falls back to the warm-up's standard deviation, then to 1).
    warm : (n,) bool, True for the warm-up samples (leave them out of an evaluation).
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    g = np.asarray(groups).reshape(-1)
    if g.shape[0] != s.shape[0]:
        raise InputError(_fmt("groups", f"has {g.shape[0]} entries for {s.shape[0]} scores", "pass one group id per score"))
    if not isinstance(n_first, (int, np.integer)) or n_first < 2:
        raise InputError(_fmt("n_first", f"is {n_first!r}", "pass a warm-up of at least 2 samples, e.g. 300"))
    if not np.isfinite(s).all():
        raise InputError(_fmt("scores", "contain NaN or infinite values", "score finite inputs only"))
    t = np.arange(s.shape[0]) if order is None else np.asarray(order).reshape(-1)
    if t.shape[0] != s.shape[0]:
        raise InputError(_fmt("order", f"has {t.shape[0]} entries for {s.shape[0]} scores", "pass one time stamp per score"))
    import pandas as pd
    # ids by value, as pandas groups them: a missing id (NaN, None) was no group of np.unique's (NaN != NaN), so
    # its scores were left as np.empty's leftovers and not flagged as warm-up; ids of mixed types did not sort
    codes, uniques = pd.factorize(g)
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        raise InputError(_fmt("groups", f"has {missing.size} missing id(s) (NaN / None), the first at position(s) "
                                        f"{missing[:5].tolist()}: those scores belong to no recording to standardise them by",
                              "give every score its recording / patient id, or drop the scores without one"))
    bad_t = np.flatnonzero(pd.isna(t))
    if bad_t.size:  # a NaN time sorts last: a score of the warm-up would be taken as one after it, or the other way round
        raise InputError(_fmt("order", f"has {bad_t.size} missing time stamp(s) (NaN / NaT), the first at position(s) "
                                       f"{bad_t[:5].tolist()}", "give every score its time stamp or sample position"))
    adapted = np.empty_like(s)
    warm = np.zeros(s.shape[0], dtype=bool)
    from ganad.data.validation import rows_by_code
    for idx in rows_by_code(codes, len(uniques)):
        idx = idx[np.argsort(t[idx], kind="stable")]
        head = idx[:n_first]
        ref = s[head]
        med = np.median(ref)
        mad = np.median(np.abs(ref - med)) * MAD_TO_STD
        scale = mad if mad > min_scale else (ref.std() if ref.std() > min_scale else 1.0)
        adapted[idx] = (s[idx] - med) / scale
        warm[head] = True
    return adapted, warm
