"""Data: loading (CSV, Parquet, NumPy, WFDB, IDX, NAB), validation, windows and scaling.

Library code never assumes where data lives: every loader takes a path (MIT-BIH also reads
``$GANAD_MITBIH_DIR`` and a user cache, and downloads through wfdb only when online).
"""

from ganad.data.readers import iter_chunks, read_array
from ganad.data.mitbih import Beats, load_mitbih, load_split, rhythm_features
from ganad.data.mnist import load_mnist
from ganad.data.nab import load_nab, nab_series
from ganad.data.scaling import Scaler
from ganad.data.tabular import adbench_names, load_adbench, load_odds, load_tabular
from ganad.data.template import template_difference
from ganad.data.validation import check_array, check_labels
from ganad.data.windows import make_windows, read_series, windows_to_points

__all__ = [
    "Beats", "Scaler", "adbench_names", "check_array", "check_labels", "iter_chunks", "load_adbench", "load_mitbih",
    "load_mnist", "load_nab", "load_odds", "load_split", "load_tabular", "make_windows", "nab_series", "read_array",
    "read_series", "rhythm_features", "template_difference", "windows_to_points",
]
