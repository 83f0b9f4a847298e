"""Request bodies -> arrays: JSON rows (or ``{"instances": [...]}``), CSV, Parquet and NPY; for a
multi-view model JSON ``{"views": {...}}`` or an NPZ archive with one array per view.

Parsing errors become 400 refusals naming the body and the fix; the numbers then go through
the detector's own validation (:meth:`BaseGANDetector._validate_for_scoring`), so the service
refuses the same inputs with the same words as the library and the CLI.
"""

from __future__ import annotations

import io

import numpy as np

from ganad.data.readers import _number, first_row_longer  # one rule for "this CSV cell is a number" and for long rows
from ganad.exceptions import _fmt
from ganad.serve.errors import Refusal
from ganad.series.readers import channel_columns, unnamed_channels

BODY = "request body"

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
NPY_TYPES = ("application/x-npy", "application/npy")
NPZ_TYPES = ("application/x-npz", "application/npz")  # a multi-view model's views: numpy.savez(f, beat=..., rhythm=...)
CONTENT_TYPES = JSON_TYPES + CSV_TYPES + PARQUET_TYPES + NPY_TYPES + NPZ_TYPES

_FLAGS = ("components", "map")


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _bad(problem: str, fix: str) -> Refusal:
    return Refusal(400, _fmt(BODY, problem, fix), "MalformedBody")


def decode(body: bytes, content_type: str | None, *, csv_header: bool = True, max_decoded_bytes: int | None = None):
    """(rows as array or nested lists, flags from a JSON object body). ``max_decoded_bytes`` bounds
    what a compressed (Parquet) body may expand to."""
    mt = media_type(content_type)
    if not body:
        raise _bad("is empty", "send the samples to score, for example a JSON list of rows")
    if mt in JSON_TYPES:
        return _json(body)
    if mt in CSV_TYPES:
        return _csv(body, csv_header), {}
    if mt in PARQUET_TYPES:
        return _parquet(body, max_decoded_bytes), {}
    if mt in NPY_TYPES:
        return _npy(body), {}
    if mt in NPZ_TYPES:
        return _npz(body, max_decoded_bytes), {}
    raise Refusal(415, _fmt("Content-Type", f"is {mt or 'missing'!r}, which the service does not read",
                            f"send one of {', '.join(CONTENT_TYPES)}"), "UnsupportedMediaType")


def _json(body: bytes):
    import orjson
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"is not valid JSON ({exc})", 'send a list of rows such as [[0.1, 0.2], [0.3, 0.4]] or {"instances": [...]}') from None
    flags = {}
    if isinstance(obj, dict):
        unknown = sorted(set(obj) - {"instances", "views", *_FLAGS})
        if unknown or ("instances" in obj) == ("views" in obj):
            problem = (f"has unknown key(s) {unknown}" if unknown else "has both 'instances' and 'views'" if "instances" in obj
                       else "is a JSON object without 'instances'")
            raise Refusal(422, _fmt(BODY, problem, 'send {"instances": [[...], ...]} with optional "components" and "map" (true/false); '
                                                   'a multi-view model takes {"views": {"NAME": [[...], ...], ...}} instead'),
                          "InputError")
        for k in _FLAGS:
            if k in obj:
                if not isinstance(obj[k], bool):
                    raise Refusal(422, _fmt(f"{BODY} key {k!r}", f"is {obj[k]!r}", "use true or false"), "InputError")
                flags[k] = obj[k]
        if "views" in obj:
            views = obj["views"]
            if not isinstance(views, dict) or not views:
                raise Refusal(422, _fmt(f"{BODY} key 'views'", f"is a JSON {type(views).__name__}" if not isinstance(views, dict) else "is empty",
                                        'send {"views": {"NAME": [[...], ...], ...}}, one list of rows per view'), "InputError")
            return {str(v): _rows(rows, f"{BODY} view {v!r}") for v, rows in views.items()}, flags
        obj = obj["instances"]
    return _rows(obj, BODY), flags


def _rows(obj, name: str):
    """A JSON list of rows -> a float64 array where it converts cleanly, else the list (validated later).
    float64, not float32: JSON numbers are float64, and the scaler needs every digit of a feature
    such as a UNIX timestamp (1.7e9 + k is one value in float32); values beyond float32 are named
    by validation."""
    if not isinstance(obj, list):
        raise Refusal(422, _fmt(name, f"holds a JSON {type(obj).__name__} where rows are expected",
                                'send a list of rows such as [[0.1, 0.2], [0.3, 0.4]] or {"instances": [...]}'), "InputError")
    if not obj:
        raise Refusal(422, _fmt(name, "holds no rows", "send at least one row"), "InputError")
    try:  # the common case, numeric rows of equal length: one conversion (the library's rules for the rest)
        return np.array(obj, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        pass
    return obj


def _csv(body: bytes, header: bool):
    import pandas as pd
    try:
        df = pd.read_csv(io.BytesIO(body), header=0 if header else None)
    except Exception as exc:
        raise _bad(f"cannot be read as CSV ({type(exc).__name__}: {exc})", "send comma-separated rows of numbers with a header row "
                   "(or ?csv_header=false without one)") from None
    # pandas made the extra leading fields of long rows an index (1, 5, ... may even be a RangeIndex; 0, 1, 2, ...
    # look like none: first_row_longer asks the first data row itself)
    if not df.index.equals(pd.RangeIndex(len(df))) or (header and first_row_longer(io.BytesIO(body))):
        raise Refusal(422, _fmt(BODY, f"has rows with more fields than the header's {df.shape[1]} columns",
                                "send one value per header column in every row"), "InputError")
    if header:  # pandas renames a repeated name's copies 'a.1', 'a.2' and reads them as other columns (the CLI refuses them)
        first = pd.read_csv(io.BytesIO(body), header=None, nrows=1, dtype=str, keep_default_na=False)
        from ganad.data.readers import repeated_names
        dup = repeated_names([str(v) for v in first.iloc[0].tolist()]) if first.shape[0] else []
        if dup:
            raise Refusal(422, _fmt(BODY, f"has duplicate column name(s) {dup[:5]} in its header",
                                    "give every column its own name (or drop the copies)"), "InputError")
    cols = [str(c) for c in df.columns]
    if header and cols and all(_number(c) for c in cols) and cols != [str(i) for i in range(len(cols))]:
        # the first line holds only numbers: a data row that would be lost as the header (0,1,2,... stays
        # a header, pandas' default column names, as `ganad fit` / `score` read it)
        raise Refusal(422, _fmt(BODY, f"has a first line of numbers only ({', '.join(str(c) for c in df.columns[:5])}), read as the header",
                                "send a header row with the column names, or pass ?csv_header=false for rows without one"), "InputError")
    if len(df) == 0:
        raise Refusal(422, _fmt(BODY, "is a CSV with a header but no data rows", "send at least one row"), "InputError")
    return df


def _parquet(body: bytes, max_decoded_bytes: int | None):
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(io.BytesIO(body))
        meta = pf.metadata
        need = meta.num_rows * max(meta.num_columns, 1) * 8
        if max_decoded_bytes is not None and need > max_decoded_bytes:
            raise Refusal(413, _fmt(BODY, f"is a Parquet file of {meta.num_rows} rows x {meta.num_columns} columns, about {need} bytes "
                                          f"once decoded, over the server's limit of {max_decoded_bytes}",
                                    "split the rows over several requests"), "BodyTooLarge")
        from ganad.data.readers import arrow_decimals_as_float
        return arrow_decimals_as_float(pf.read()).to_pandas()
    except Refusal:
        raise
    except Exception as exc:
        raise _bad(f"cannot be read as Parquet ({type(exc).__name__}: {exc})", "send a complete Parquet file of numeric columns") from None


def _npy(body: bytes):
    fmt = np.lib.format
    try:
        fh = io.BytesIO(body)
        version = fmt.read_magic(fh)
        shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if need > len(body) - fh.tell():  # refuse before numpy allocates what the header claims
            raise ValueError(f"the header declares shape {shape} of {dtype} ({need} bytes) but the body holds "
                             f"{len(body) - fh.tell()} bytes of data")
        return np.load(io.BytesIO(body), allow_pickle=False)
    except Exception as exc:
        raise _bad(f"cannot be read as NPY ({type(exc).__name__}: {exc})",
                   "send a numeric array written by numpy.save (object arrays are refused: they would need pickle)") from None


def _npz(body: bytes, max_decoded_bytes: int | None) -> dict[str, np.ndarray]:
    """An NPZ archive (numpy.savez / savez_compressed): {view name: array}. Every member's header is
    read first, so a compressed archive that would expand past ``max_decoded_bytes`` is refused
    before anything is decompressed; object arrays are refused (they would need pickle)."""
    import zipfile

    from ganad.data.readers import _npy_header
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            names = zf.namelist()
            if not names:
                raise ValueError("the archive holds no array")
            total = 0
            for n in names:
                if not n.endswith(".npy"):
                    raise ValueError(f"member {n!r} is not an array written by numpy.savez")
                with zf.open(n) as fh:
                    head = _npy_header(fh)
                if head is None:
                    raise ValueError(f"member {n!r} has no readable array header")
                shape, dtype = head
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
            if max_decoded_bytes is not None and total > max_decoded_bytes:
                raise Refusal(413, _fmt(BODY, f"is an NPZ archive whose arrays hold {total} bytes once decoded, over the server's limit "
                                              f"of {max_decoded_bytes}", "split the samples over several requests"), "BodyTooLarge")
            with np.load(io.BytesIO(body), allow_pickle=False) as npz:
                return {n: npz[n] for n in npz.files}
    except Refusal:
        raise
    except Exception as exc:
        raise _bad(f"cannot be read as NPZ ({type(exc).__name__}: {exc})",
                   "send the views as numeric arrays written by numpy.savez(f, VIEW=rows, ...) (object arrays are refused: "
                   "they would need pickle)") from None


_SERIES_KEYS = ("stream_id", "points", "values", "components")


def decode_series(body: bytes, content_type: str | None, *, csv_header: bool = True, channels=None,
                  max_decoded_bytes: int | None = None):
    """A series chunk: (points as array or nested lists, stream id from a JSON body or None, flags).

    JSON: ``{"stream_id": ..., "points": [[...], ...]}`` or ``{"values": [...]}`` (one channel), or a
    bare list of points; CSV (the columns named as the model's ``channels`` when the header has them
    all; other names are refused unless the model's channels are unnamed, ``ch0, ch1, ...``: then every
    column), Parquet (the same) or NPY ((n,) or (n, channels))."""
    mt = media_type(content_type)
    if not body:
        raise _bad("is empty", 'send the next points, for example {"stream_id": "s1", "points": [[0.1, 0.2]]}')
    if mt in JSON_TYPES:
        import orjson
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _bad(f"is not valid JSON ({exc})", 'send {"stream_id": "s1", "points": [[...], ...]} or {"stream_id": "s1", "values": [...]}') from None
        if isinstance(obj, list):
            return obj, None, {}
        if not isinstance(obj, dict):
            raise Refusal(422, _fmt(BODY, f"holds a JSON {type(obj).__name__}", 'send {"stream_id": "s1", "points": [[...], ...]}'), "InputError")
        unknown = sorted(set(obj) - set(_SERIES_KEYS))
        has = [k for k in ("points", "values") if k in obj]
        if unknown or len(has) != 1:
            problem = (f"has unknown key(s) {unknown}" if unknown else
                       "has both 'points' and 'values'" if has else "has neither 'points' nor 'values'")
            raise Refusal(422, _fmt(BODY, problem, 'send {"stream_id": "s1", "points": [[...], ...]} (rows of every channel) or '
                                                   '{"stream_id": "s1", "values": [...]} (one channel), with optional "components": true'),
                          "InputError")
        flags = {}
        if "components" in obj:
            if not isinstance(obj["components"], bool):
                raise Refusal(422, _fmt(f"{BODY} key 'components'", f"is {obj['components']!r}", "use true or false"), "InputError")
            flags["components"] = obj["components"]
        pts = obj[has[0]]
        if has[0] == "values" and isinstance(pts, list) and any(isinstance(v, list) for v in pts):
            raise Refusal(422, _fmt(f"{BODY} key 'values'", "holds lists", "send one number per point in 'values', or rows of "
                                                                            "every channel in 'points'"), "InputError")
        if not isinstance(pts, list) or not pts:
            raise Refusal(422, _fmt(f"{BODY} key {has[0]!r}", "holds no points" if pts == [] else f"is a JSON {type(pts).__name__}",
                                    "send a non-empty list of points, oldest first"), "InputError")
        return pts, obj.get("stream_id"), flags
    if mt in NPY_TYPES:
        return _npy(body), None, {}
    if mt in CSV_TYPES or mt in PARQUET_TYPES:
        df = _csv(body, csv_header) if mt in CSV_TYPES else _parquet(body, max_decoded_bytes)
        if channels is not None and (csv_header or mt in PARQUET_TYPES):
            names = [str(c) for c in df.columns]
            pos = channel_columns(names, channels)  # also without surrounding spaces: a header 'time, a, b' names ' a'
            if pos is not None:
                df = df.iloc[:, pos].set_axis(list(channels), axis=1)
            elif not unnamed_channels(channels):
                # other names than the model's channels: reading the values by position would score them
                # as channels they may not be (as `ganad stream` refuses such a header); a model without
                # channel names reads every column by position
                raise Refusal(422, _fmt(BODY, f"has columns {names[:8]}, but the model's channels are {list(channels)[:8]}",
                                        "name every channel of the model in the header (in any order; other columns such as a "
                                        "time are left out), or send the values in the model's channel order without a header "
                                        "(?csv_header=false), as NPY or as JSON points"), "InputError")
        return df, None, {}
    raise Refusal(415, _fmt("Content-Type", f"is {mt or 'missing'!r}, which the service does not read",
                            f"send one of {', '.join(CONTENT_TYPES)}"), "UnsupportedMediaType")
