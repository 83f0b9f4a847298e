"""Validation at the door: every array that enters ganad passes through `check_array`."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ganad.exceptions import InputError, _fmt

#: data shapes ganad knows, keyed by the number of array dimensions
SHAPE_KINDS = {2: "vector", 3: "series", 4: "image"}


def rows_by_code(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """The row positions of each group ``0 .. n_groups - 1`` of ``codes`` (``pd.factorize``'s, none negative), each
    in row order: one stable sort instead of a pass over every row per group (a file of 10,000 series ids took
    10,000 passes)."""
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.cumsum(np.bincount(codes, minlength=n_groups))[:-1]) if n_groups else []


def as_pandas_frame(X):
    """A dataframe of another library (a polars DataFrame, a pyarrow Table or RecordBatch) as a
    pandas DataFrame, so that ganad reads its column names as it reads a pandas DataFrame's (by
    name, refused when renamed or reordered); anything else as it is. polars' frames were refused with an AttributeError, a pyarrow Table was read by
    position whatever its column order."""
    if X is None or isinstance(X, np.ndarray) or type(X).__module__.split(".")[0] == "pandas":
        return X
    if callable(getattr(X, "to_pandas", None)) and (hasattr(X, "column_names") or hasattr(X, "schema")) \
            and not hasattr(X, "to_frame"):  # pyarrow Table / RecordBatch, polars DataFrame (not a Series)
        return X.to_pandas()
    return X


def plain_input(X, name: str = "X", row0: int = 0):
    """``X`` without what ``np.asarray`` would silently drop or fail on: a masked array with masked
    values is refused (``np.asarray`` returned the values under the mask, which were then scored), one
    without any becomes its data; a torch tensor becomes a NumPy array (detached from autograd and moved
    to the CPU; bfloat16, which NumPy has no type for, as float32). Anything else as it is. ``row0``: the
    index of the first row in the messages (a stream's chunk)."""
    if type(X) is np.ndarray:  # the common case, first: a stream calls this once per point
        return X
    if isinstance(X, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(X)
        if mask.any():
            first = tuple(int(v) for v in np.argwhere(mask)[0])
            where = f"row {row0 + first[0]}" + (f", column {first[1]}" if len(first) == 2 else f", position {first[1:]}" if len(first) > 2 else "")
            raise InputError(_fmt(name, f"is a masked array with {int(mask.sum())} masked value(s), the first at {where}",
                                  "ganad does not read masks: fill them (X.filled(value)) or drop those rows (X[~X.mask.any(axis=1)] for a table)"))
        return np.ma.getdata(X)
    if type(X).__module__.split(".")[0] == "torch" and callable(getattr(X, "detach", None)):
        import torch
        t = X.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return X


def check_array(
    X,
    name: str = "X",
    *,
    allowed_ndim: Sequence[int] = (2, 3, 4),
    min_samples: int = 1,
    dtype=np.float32,
    columns: Sequence[str] | None = None,
) -> np.ndarray:
    """Return `X` as a C-contiguous float array after checking it is usable.

    ``dtype``: the float type returned; ``"float"`` keeps the input's precision: float32 for
    data float32 holds exactly (float32, float16, bool, 8- and 16-bit integers), float64 for
    everything else (float64, 32- and 64-bit integers such as UNIX timestamps, lists, ...), so
    that the scaler sees every digit (a feature ``1.7e9 + k`` is a constant in float32). Either
    way, values beyond the float32 range are refused: ganad's networks compute in float32.

    Raises :class:`InputError` naming ``name`` when the input is empty, has the wrong
    number of dimensions, holds non-numeric values or contains NaN / inf.
    """
    if X is None:
        raise InputError(_fmt(name, "got None instead of an array", "pass a NumPy array, a pandas DataFrame or a list of rows"))
    X = as_pandas_frame(plain_input(X, name))
    if hasattr(X, "to_numpy") and hasattr(X, "dtype") and not hasattr(X, "columns") and hasattr(X, "to_frame"):  # pandas Series
        raise InputError(_fmt(name, f"is a pandas Series ({len(X)} values in one column), not a table of samples",
                              "pass a DataFrame with one row per sample: series.to_frame() for one feature "
                              "(a long time series to cut into windows: ganad.series.SeriesDetector)"))
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes"):  # pandas DataFrame
        from pandas.api.types import is_bool_dtype, is_extension_array_dtype, is_numeric_dtype
        dup = X.columns[X.columns.duplicated()]
        if len(dup):
            raise InputError(_fmt(name, f"has duplicate column name(s) {[str(c) for c in dup[:5]]}",
                                  "give every column its own name (or drop the copies) before passing the data"))
        non_numeric = [str(c) for c in X.columns if not (is_numeric_dtype(X[c]) or is_bool_dtype(X[c]))]
        if non_numeric:
            raise InputError(_fmt(name, f"has non-numeric column(s) {non_numeric[:5]}", "drop or encode these columns (for example one-hot) before passing the data"))
        columns = [str(c) for c in X.columns]
        warn_inexact_integer_columns(X, name)  # before the frame becomes float64 as a whole
        checked_ints = True
        if any(is_extension_array_dtype(t) for t in X.dtypes):  # nullable Int64 / boolean: pd.NA becomes NaN, reported below
            X = X.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            X = X.to_numpy()
    else:
        checked_ints = False
        columns = None if columns is None else [str(c) for c in columns]  # a table file's header (the readers pass it)
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists etc.
        raise InputError(_fmt(name, f"cannot be converted to an array ({exc})", "pass rows of equal length holding numbers")) from exc
    if arr.dtype.kind in "mM":  # dates and durations would be scored as counts of days / nanoseconds since 1970
        raise InputError(_fmt(name, f"holds dates or times (dtype {arr.dtype})",
                              "pass numeric features (for a series, give the times as time= / --time-column, not as a channel)"))
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(_fmt(name, f"holds non-numeric values (dtype {arr.dtype})", "convert or drop non-numeric columns before passing the data")) from exc
    if np.iscomplexobj(arr):
        raise InputError(_fmt(name, "holds complex numbers (Complex data not supported)", "pass real-valued data (for example the magnitude)"))
    if arr.ndim == 1:
        raise InputError(_fmt(name, f"is 1-D with shape {arr.shape}; ganad expects one sample per row",
                              "Reshape your data with X.reshape(-1, 1) for one feature, or X.reshape(1, -1) for one sample"))
    if arr.ndim not in allowed_ndim:
        kinds = ", ".join(f"{d}-D ({SHAPE_KINDS.get(d, '?')})" for d in allowed_ndim)
        raise InputError(_fmt(name, f"has {arr.ndim} dimensions (shape {arr.shape}); expected {kinds}",
                              "pass (n, features) tables, (n, channels, length) series windows or (n, channels, height, width) images"))
    if arr.shape[0] == 0:
        raise InputError(_fmt(name, f"is empty (shape {arr.shape}, 0 samples)", "pass at least one sample"))
    if arr.size == 0:
        raise InputError(_fmt(name, f"has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required", "pass at least one feature per sample"))
    if arr.shape[0] < min_samples:
        raise InputError(_fmt(name, f"has {arr.shape[0]} sample{'s' if arr.shape[0] != 1 else ''}, but at least {min_samples} are needed",
                              f"pass at least {min_samples} samples"))
    if isinstance(dtype, str) and dtype == "float":
        dtype = np.float32 if np.can_cast(arr.dtype, np.float32, "safe") else np.float64
    if arr.dtype != np.float32 and arr.dtype != bool:
        _check_float32_range(arr, name, columns)  # refused even where float64 is kept: the networks are float32
    if arr.dtype.kind in "iu" and arr.dtype.itemsize >= 8 and not checked_ints:
        _warn_inexact_integers(arr, name, columns)
    arr = np.ascontiguousarray(arr, dtype=dtype)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite.reshape(arr.shape[0], -1))
        n_bad = int((~finite).sum())
        row, col = (int(bad[0][0]), int(bad[0][1]))
        where = f"column {columns[col]!r}" if columns is not None and arr.ndim == 2 else f"flat feature {col}"  # a DataFrame's column by name
        raise InputError(_fmt(name, f"contains {n_bad} NaN or infinite value(s), the first at row {row}, {where}",
                              "impute or drop missing values (for example sklearn.impute.SimpleImputer) before passing the data"))
    return arr


#: the largest magnitude float32 holds; ganad's networks compute in float32
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32_range(arr: np.ndarray, name: str, columns: list[str] | None = None) -> None:
    """Refuse finite values that float32 cannot hold (they would become inf, then NaN scores)."""
    if arr.dtype.kind in "iu":
        if arr.dtype.itemsize < 16:
            return  # every 64-bit integer fits in float32's range (rounded)
    flat = arr.reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):  # the extremes first (NaN ignored): no array-sized temporary
        hi, lo = float(np.fmax.reduce(flat)), float(np.fmin.reduce(flat))  # Python floats: float16's compare without a cast
    if (np.isnan(hi) or hi <= FLOAT32_MAX) and (np.isnan(lo) or lo >= -FLOAT32_MAX):
        return
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.abs(arr.reshape(arr.shape[0], -1))
        too_big = np.isfinite(a) & (a > FLOAT32_MAX)
    if too_big.any():
        bad = np.argwhere(too_big)
        rows = np.unique(bad[:, 0])
        row, col = int(bad[0][0]), int(bad[0][1])
        raise InputError(_fmt(name, f"holds {int(too_big.sum())} value(s) beyond the float32 range (|x| > {FLOAT32_MAX:.3g}) "
                                    f"in row(s) {rows[:10].tolist()}, the first at row {row}, "
                                    f"{f'column {columns[col]!r}' if columns is not None and arr.ndim == 2 else f'flat feature {col}'} "
                                    f"(value {float(arr.reshape(arr.shape[0], -1)[row, col]):.3g})",
                              "these values are out of range for ganad's float32 networks: fix or drop these rows, "
                              "or rescale the feature (for example take its logarithm) before passing the data"))


#: integers beyond this magnitude are not all exactly representable in float64
FLOAT64_EXACT_INT = 2 ** 53


def _inexact(v: np.ndarray) -> np.ndarray:
    """Which values of a 64-bit integer array lie beyond 2**53 in magnitude."""
    return (v > FLOAT64_EXACT_INT) | ((v < -FLOAT64_EXACT_INT) if v.dtype.kind == "i" else False)


def warn_inexact_integer_columns(df, name: str) -> None:
    """:func:`_warn_inexact_integers` for a DataFrame's 64-bit integer columns, before the frame is
    converted to float64 (a frame mixing float and integer columns, or a table file, becomes float64
    as a whole, and the integers' lost digits could no longer be seen)."""
    cols = [str(c) for c in df.columns if getattr(df[c].dtype, "kind", "") in "iu" and df[c].dtype.itemsize >= 8
            and bool(_inexact(df[c].to_numpy()).any())]
    if cols:
        _warn_columns([repr(c) for c in cols], name)


def _warn_inexact_integers(arr: np.ndarray, name: str, columns: list[str] | None = None) -> None:
    """Warn (:class:`PrecisionWarning`) when 64-bit integers lie beyond 2**53: as float64, which ganad
    computes its statistics in, neighbouring values there are one value (2**62 + k for k < 512 all
    become 2**62), so a column of large IDs or nanosecond timestamps loses its variation."""
    flat = arr.reshape(arr.shape[0], -1)
    cols = np.flatnonzero(_inexact(flat).any(axis=0))
    if len(cols) == 0:
        return
    where = ([repr(columns[c]) for c in cols] if columns is not None and arr.ndim == 2 else [f"flat feature {c}" for c in cols])
    _warn_columns(where, name)


def _warn_columns(where: list[str], name: str) -> None:
    """The :class:`PrecisionWarning`, naming the columns ``where`` (as they are to be printed)."""
    import warnings

    from ganad.exceptions import PrecisionWarning
    warnings.warn(f"{name}: {len(where)} column(s) ({', '.join(where[:5])}{', ...' if len(where) > 5 else ''}) hold integers beyond "
                  f"2**53, which float64 cannot hold exactly: neighbouring values become one (2**62 + k for every k < 512 "
                  f"is 2**62). Fix: subtract an offset (for example the column's minimum) or drop the column (IDs, "
                  f"timestamps) before passing the data", PrecisionWarning, stacklevel=3)


def check_labels(y, n: int, name: str = "y") -> np.ndarray:
    """Binary labels (1 = anomaly) of length ``n``."""
    arr = np.asarray(y)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(_fmt(name, f"has shape {arr.shape}", "pass a 1-D array of 0/1 labels, one per sample"))
    if arr.shape[0] != n:
        raise InputError(_fmt(name, f"has {arr.shape[0]} labels for {n} samples", "pass exactly one label per sample, in the same order"))
    try:
        arr_f = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(_fmt(name, f"holds non-numeric labels (dtype {arr.dtype})", "encode labels as 0 = normal, 1 = anomaly")) from exc
    if not np.isfinite(arr_f).all() or not np.isin(arr_f, (0.0, 1.0)).all():
        vals = np.unique(arr_f[np.isfinite(arr_f)])[:5]
        raise InputError(_fmt(name, f"must hold only 0 (normal) and 1 (anomaly), found values such as {vals.tolist()} or NaN",
                              "map your classes to 0 = normal, 1 = anomaly"))
    return arr_f.astype(np.int64)
