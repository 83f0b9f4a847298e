"""MIT-BIH Arrhythmia Database: heartbeats cut around the reference R-peak annotations.

The records are read through :mod:`wfdb` from a local directory holding the PhysioNet
files ``NNN.hea`` / ``NNN.dat`` / ``NNN.atr`` (and usually ``RECORDS`` and
``SHA256SUMS.txt``). Conventions follow the AAMI EC57 standard and de Chazal et al.
(2004), "Automatic classification of heartbeats using ECG morphology and heartbeat
interval features", IEEE Trans Biomed Eng 51(7):1196-1206:

* beat classes: N = {N, L, R, e, j}, S = {A, a, J, S}, V = {V, E}, F = {F}, Q = {/, f, Q};
  every other annotation symbol (rhythm changes ``+``, noise ``~``, artefacts ``|``,
  comments ``"``, flutter waves ``!``, non-conducted P waves ``x``, ...) is not a beat
  and is skipped;
* the paced records 102, 104, 107 and 217 are left out by default;
* the inter-patient split DS1 (training) / DS2 (testing), see :data:`DS1` and :data:`DS2`.

Where the data comes from when ``path`` is None: the directory in the environment
variable ``GANAD_MITBIH_DIR``, then the user cache ``~/.cache/ganad/mitdb`` (or
``$XDG_CACHE_HOME/ganad/mitdb``), then a download from PhysioNet into that cache, checked
file by file against PhysioNet's ``SHA256SUMS.txt``. Nothing is ever written next to a
directory the user passes in.

Example::

    from ganad.data.mitbih import load_split
    train = load_split("DS1", "/data/mitdb", rr_features=True)
    normal = train.subset(train.aami == "N")      # one-class training set
    test = load_split("DS2", "/data/mitdb", rr_features=True)
    test.X.shape, test.y.mean()                   # (n, 1, 256), fraction of anomalies

The package, one job per module: :mod:`~ganad.data.mitbih.catalogue` (classes, records, split),
:mod:`~ganad.data.mitbih.download` (locating and downloading the files),
:mod:`~ganad.data.mitbih.reader` (one record, cached), :mod:`~ganad.data.mitbih.rhythm` (RR
features), :mod:`~ganad.data.mitbih.beats` (:class:`Beats`) and :mod:`~ganad.data.mitbih.loader`.
"""

from ganad.data.mitbih.beats import Beats
from ganad.data.mitbih.catalogue import AAMI_CLASSES, AAMI_MAP, ALL_RECORDS, DS1, DS2, ENV_VAR, PACED_RECORDS
from ganad.data.mitbih.download import download_mitbih, resolve_mitbih_dir, verify_checksums
from ganad.data.mitbih.loader import load_mitbih, load_split
from ganad.data.mitbih.reader import clear_mitbih_cache
from ganad.data.mitbih.rhythm import _rr_features as _rr_features  # tests check it directly
from ganad.data.mitbih.rhythm import rhythm_features

__all__ = ["AAMI_CLASSES", "AAMI_MAP", "ALL_RECORDS", "DS1", "DS2", "ENV_VAR", "PACED_RECORDS", "Beats", "clear_mitbih_cache",
           "download_mitbih", "load_mitbih", "load_split", "resolve_mitbih_dir", "rhythm_features", "verify_checksums"]
