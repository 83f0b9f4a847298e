"""Reading user data files: CSV, Parquet, NPY, NPZ and folders of image files; whole or in chunks
(for files larger than memory)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ganad.exceptions import DataFileError, InputError, _fmt
from ganad.params import is_int

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npy": "npy", ".npz": "npz"}


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def require_regular(path) -> None:
    """Refuse a data path that is neither a regular file nor a folder (links followed): a named pipe,
    a device or a link to one (``/dev/zero``) was read for ever, or hung at the second of the reads
    a file gets (header, row count, chunks). A missing path is left to the caller's message."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataFileError(_fmt(str(path), f"is {_kind(mode)}, not a regular file",
                                 "save the data to a file first (e.g. cat ... > data.csv) and pass that file"))


def file_format(path) -> str:
    p = Path(path)
    if not p.exists():
        raise DataFileError(_fmt(str(p), "does not exist", "check the path"))
    require_regular(p)
    if p.is_dir():
        if image_folder(p)[0]:
            return "images"
        raise DataFileError(_fmt(str(p), f"is a directory with no image file ({', '.join(IMAGE_SUFFIXES)}), not a data file"
                                 + (" (it holds WFDB records)" if _has_wfdb(p) else ""),
                                 "pass a CSV, Parquet, NPY or NPZ file, or a folder of image files of one size" + _WFDB_HINT * _has_wfdb(p)))
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        fix = ("use .csv, .parquet, .npy or .npz (or pass the folder holding image files)" if p.suffix.lower() in IMAGE_SUFFIXES
               else "use .csv, .parquet, .npy or .npz" + _WFDB_HINT * (p.suffix.lower() in _WFDB_SUFFIXES))
        raise DataFileError(_fmt(str(p), f"has an unknown extension {p.suffix!r}", fix))
    return fmt


#: the files of a PhysioNet WFDB record (MIT-BIH and its like): header, signals, annotations
_WFDB_SUFFIXES = (".hea", ".dat", ".atr")
_WFDB_HINT = ("; ECG records in WFDB form (MIT-BIH's .hea / .dat / .atr) are cut into beats in Python with "
              "ganad.data.load_mitbih(folder, records=[...]), whose beats.X saved with numpy.save is a file ganad reads; "
              "`ganad benchmark mitbih --data PARENT` runs the inter-patient benchmark on such a folder")


def _has_wfdb(folder: Path) -> bool:
    """Whether a folder holds WFDB record headers (a quick look, not a check of the records)."""
    try:
        return any(True for _ in folder.glob("*.hea"))
    except OSError:
        return False


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")  # and the 16-bit "I;16", "I;16B", "I;16L", "I;16N"


def image_folder(path) -> tuple[list[Path], list[str]]:
    """The image files of a folder, sorted by name (plain string order: zero-pad numbers, img_002.png
    before img_010.png), and the names of the other entries that are not read: files whose extension is
    not an image's (:data:`IMAGE_SUFFIXES`, any case) and subfolders. Hidden entries (a name starting
    with '.') are skipped without being listed.

    A folder with no image file of its own but images in its subfolders (an MVTec-style ``test/`` with
    ``good/``, ``crack/``, ...) gives the images of every subfolder, at any depth, sorted by their path
    relative to the folder (``crack/000.png`` before ``good/000.png``); the other entries are then
    listed by that path."""
    p = Path(path)
    images, other = [], []
    for f in sorted(p.iterdir(), key=lambda f: f.name):
        if f.name.startswith("."):
            continue
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
            images.append(f)
        else:
            other.append(f.name + ("/" if f.is_dir() else ""))
    if images or not any(o.endswith("/") for o in other):
        return images, other
    nested, skipped = [], []
    for f in sorted(p.rglob("*"), key=lambda f: f.relative_to(p).as_posix()):
        rel = f.relative_to(p)
        if any(part.startswith(".") for part in rel.parts) or f.is_dir():
            continue
        (nested if f.suffix.lower() in IMAGE_SUFFIXES else skipped).append(f)
    if not nested:
        return images, other
    return nested, [f.relative_to(p).as_posix() for f in skipped]


def image_name(folder, f: Path) -> str:
    """An image's name in the scores of a folder: its path relative to the folder (``crack/000.png``)."""
    return f.relative_to(Path(folder)).as_posix()


def _image_colour(im) -> bool:
    """Whether an opened image has colour: RGB-like modes, and palette images whose palette is not all gray."""
    mode = im.mode
    if mode in _GRAY_MODES or mode.startswith("I;16"):
        return False
    if mode in ("P", "PA"):
        pal = im.getpalette() or []
        return any(not (pal[k] == pal[k + 1] == pal[k + 2]) for k in range(0, len(pal) - 2, 3))
    return True


def _image_header(f: Path):
    """(height, width, colour) of an image file from its header, the file named when it is not an image."""
    from PIL import Image
    try:
        with Image.open(f) as im:
            w, h = im.size
            return h, w, _image_colour(im)
    except Exception as exc:
        raise DataFileError(_fmt(str(f), f"cannot be read as an image ({type(exc).__name__}: {exc})",
                                 "replace or remove the file (it is damaged or not an image despite its extension)")) from exc


def _image_pixels(f: Path, colour: bool) -> np.ndarray:
    """The pixels of an image file (its first frame), channels first: (1, H, W) or, when ``colour``,
    (3, H, W); values as stored (uint8 0..255, uint16 0..65535, int32 / float32 for 32-bit images);
    alpha dropped, palettes looked up, 1-bit images as 0 / 255."""
    from PIL import Image
    try:
        with Image.open(f) as im:
            im.load()
            mode = im.mode
            if mode in ("1", "LA", "La") or (mode in ("P", "PA") and not _image_colour(im)):
                arr = np.asarray(im.convert("L"))
            elif mode.startswith("I;16"):  # 16-bit: uint16 in the machine's byte order
                arr = np.asarray(im)
                arr = arr.astype(arr.dtype.newbyteorder("=")) if arr.dtype.byteorder not in ("=", "|") else arr
            elif mode in ("L", "I", "F"):
                arr = np.asarray(im)
            else:  # RGBA / PA: alpha dropped (not composited); P: the palette's colours; CMYK, YCbCr, ...: as RGB
                arr = np.asarray(im.convert("RGB"))
    except Exception as exc:
        raise DataFileError(_fmt(str(f), f"cannot be read as an image ({type(exc).__name__}: {exc})",
                                 "replace or remove the file (it is damaged or truncated)")) from exc
    if arr.ndim == 2:
        arr = arr[None]
        if colour:  # a gray image among colour ones: its value in the three channels
            arr = np.repeat(arr, 3, axis=0)
    else:
        arr = np.moveaxis(arr, -1, 0)
    return arr


def image_plan(path) -> tuple[list[Path], Path | None]:
    """The folder's image files and the first with colour (None: all grayscale, read as one channel);
    refuses images of different sizes (naming the first that differs from the first image) from the
    headers, before any pixels are read."""
    files = image_folder(path)[0]
    first, colour = None, None
    for f in files:
        h, w, c = _image_header(f)
        if c and colour is None:
            colour = f
        if first is None:
            first = (f, h, w)
        elif (h, w) != first[1:]:
            raise InputError(_fmt(str(f), f"is {h}x{w} pixels (height x width), but {first[0].name}, the first image of the folder, "
                                  f"is {first[1]}x{first[2]}; the images of a folder are samples of one shape",
                                  f"resize the images to one size (e.g. with Pillow: Image.open(f).resize(({first[2]}, {first[1]})).save(f)), "
                                  "or move the odd ones out of the folder"))
    return files, colour


def first_row_longer(src, sep: str = ",") -> bool:
    """Whether the first data row of a CSV with a header row (a path or a binary buffer) has more fields
    than the header. pandas then takes the extra leading fields as the index, and when they count 0, 1,
    2, ... that index looks like none, so the rows would be read shifted by a column; the first two
    lines read without a header show it. One rule for the table, series and service readers."""
    import pandas as pd
    try:
        pd.read_csv(src, sep=sep, header=None, nrows=2, dtype=str, keep_default_na=False)
    except pd.errors.ParserError:
        return True
    finally:
        if hasattr(src, "seek"):
            src.seek(0)
    return False


def arrow_decimals_as_float(data):
    """A pyarrow Table / RecordBatch with its decimal columns (SQL and Spark exports write them) cast to
    float64: pandas would make them columns of Python Decimal objects, which read as non-numeric."""
    import pyarrow as pa
    schema = data.schema
    if not any(pa.types.is_decimal(t) for t in schema.types):
        return data
    for i, f in enumerate(schema):
        if pa.types.is_decimal(f.type):
            schema = schema.set(i, f.with_type(pa.float64()))  # the schema's metadata (pandas' index) kept
    cols = [c.cast(pa.float64()) if pa.types.is_decimal(c.type) else c for c in data.columns]
    return type(data).from_arrays(cols, schema=schema)


def _frame_to_array(df, path, exclude: Sequence[str], sep: str = ",", decimal: str = ".", offset: int = 0, whole: bool = True):
    """The frame's columns but ``exclude`` as float64, refusing non-numeric columns (``offset``: the
    frame's first data row in the file; ``whole``: whether the frame is the whole file)."""
    missing = [c for c in exclude if c not in df.columns]
    if missing:
        fix = "check --exclude"
        flag = other_separator(df.columns, sep)  # the header read as one column: another separator
        if flag is not None:
            fix = f"the file seems to be separated by '{flag}', not {sep!r}: pass --sep '{flag}' (API: read_array(path, sep=...))"
        raise InputError(_fmt(str(path), f"has no column(s) {missing} to exclude (columns: {list(df.columns)[:10]})", fix))
    df = df.drop(columns=list(exclude))
    import pandas as pd
    if not isinstance(df.index, pd.RangeIndex):  # pandas made the extra leading fields of long rows an index
        fix = "check the separator (--sep) and that every row has one value per header column"
        if str(df.columns[0]).lstrip().startswith("#"):
            fix = f"the first line ({str(df.columns[0])[:40]!r}) looks like a comment: remove the comment line(s) at the top of the file"
        raise InputError(_fmt(str(path), f"has rows with more fields than the header's {df.shape[1]} columns (first at data row {len(df) and 0})", fix))
    if len(df) == 0:  # a header-only file: the caller reports "no data rows", not "non-numeric"
        return np.zeros((0, df.shape[1]), dtype=np.float32)
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    bad = [c for c in df.columns if not (is_numeric_dtype(df[c].dtype) or is_bool_dtype(df[c].dtype))]
    for c in bad:  # True / False with empty cells: pandas reads them as objects, not booleans; say so, not "non-numeric"
        nan = df[c].isna()
        if nan.any() and not nan.all() and all(isinstance(v, (bool, np.bool_)) for v in df[c][~nan]):
            first = int(np.flatnonzero(nan.to_numpy())[0]) + offset
            rows = "" if whole else f" in data rows {offset} to {offset + len(df) - 1}"
            raise InputError(_fmt(f"{path} column {str(c)!r}", f"is boolean (True / False) with {int(nan.sum())} missing value(s){rows} "
                                  f"(first at data row {first}), which cannot be read as numbers",
                                  f"fill the missing values (e.g. in pandas df[{str(c)!r}] = df[{str(c)!r}].fillna(False)) or drop those rows, "
                                  f"or leave the column out with --exclude {c}"))
    if bad:
        raise InputError(_fmt(str(path), f"has non-numeric column(s) {[str(c) for c in bad[:5]]}", _non_numeric_fix(df, bad, sep, decimal)))
    from ganad.data.validation import warn_inexact_integer_columns
    warn_inexact_integer_columns(df, str(path))  # said before the frame becomes float64, which hides it
    return df.to_numpy(dtype=np.float64)  # range-checked (1e300 is refused) and kept in float64 for the scaler


_OTHER_SEPARATORS = ((";", ";"), ("\t", "\\t"), ("|", "|"))  # the character and how --sep spells it


def other_separator(cells, sep: str | None, expected=None) -> str | None:
    """The separator (as ``--sep`` spells it: ';', '\\t', '|') that the ``cells`` of a file read with
    ``sep`` (default ',') seem to be separated by, or None: a header (or values) read as one column
    holds it. With ``expected`` (the columns a model was fitted on), only a separator that splits the
    cells into names including every expected one."""
    sep = sep or ","
    for o, flag in _OTHER_SEPARATORS:
        if o == sep or not any(o in str(c) for c in cells):
            continue
        if expected is None or {str(e) for e in expected} <= {p.strip() for c in cells for p in str(c).split(o)}:
            return flag
    return None


def sep_fix(cells, path, sep: str | None, expected=None) -> str | None:
    """The command line's --sep fix for a text table ``path`` whose header ``cells`` were read as one
    column of another separator's (:func:`other_separator`), or None (not a text table, no such separator)."""
    name = Path(path).name.lower()
    if not name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return None
    used = sep or ("\t" if name.endswith(".tsv") else ",")
    flag = other_separator(cells, used, expected)
    return None if flag is None else f"the file seems to be separated by '{flag}', not {used!r}: pass --sep '{flag}'"


def _non_numeric_fix(df, bad, sep: str, decimal: str) -> str:
    """The likely cause of text columns: another separator, a decimal comma, or a real text column."""
    cells = [str(c) for c in bad[:3]]
    for c in bad[:3]:
        cells += [str(v) for v in df[c].head(5).tolist()]
    flag = other_separator(cells, sep)
    if flag is not None:
        return (f"the file seems to be separated by '{flag}', not {sep!r}: pass --sep '{flag}' "
                f"(API: read_array(path, sep=...)); or leave text columns out with --exclude COLUMN")
    import re
    if any(re.fullmatch(r"\s*-?\d{1,3}(,\d{3})+(\.\d+)?\s*", v) for v in cells):
        return ("the numbers seem to have thousands separators (\"12,345.6\"): write them without (in pandas: "
                "pd.read_csv(path, thousands=',').to_csv(new_path, index=False)) and pass the new file; if the comma is "
                "a decimal mark, pass --decimal ','")
    if decimal != "," and any(re.fullmatch(r"\s*-?\d+,\d+\s*", v) for v in cells):
        return "the numbers seem to use a decimal comma (\"1,5\"): pass --decimal ',' (and --sep ';' if that separates the columns)"
    if any(re.fullmatch(r"\s*-?\d+(\.\d+)?\s*%\s*", v) for v in cells):
        return "the numbers seem to carry a unit or percent sign (\"10%\"): write plain numbers (10 or 0.1) and pass the new file"
    from ganad.data.windows import TIME_COLUMN_NAMES
    times = [str(c) for c in bad if str(c).strip().lower() in TIME_COLUMN_NAMES or _dates(df[c])]
    if times:  # a time series read as a table of independent rows: --exclude would train a per-row model on it
        t = times[0]
        axis = "" if t.strip().lower() in TIME_COLUMN_NAMES else f" --time-column {t}"
        return (f"{t!r} looks like a time column: if the file is a time series, pass --window W{axis} (e.g. --window 64{axis}; "
                f"series mode takes {t!r} as its time axis and scores every time point; API: ganad.SeriesDetector(window=W)); "
                f"if its rows are independent samples, leave it out with --exclude {t}")
    return "remove or encode them, or leave them out with --exclude COLUMN (for example an id or label column)"


def _dates(col) -> bool:
    """Whether a text column's first values all read as dates / times."""
    import warnings

    import pandas as pd
    v = col.dropna().head(5)
    if v.empty or not all(isinstance(x, str) and any(ch.isdigit() for ch in x) for x in v):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(pd.to_datetime(v, errors="coerce").notna().all())
        except (ValueError, TypeError, OverflowError):
            return False


def _no_columns_to_exclude(path, fmt: str, exclude: Sequence[str]) -> str:
    """The refusal of --exclude for an NPY / NPZ file (an array: no column names to match) or a folder of images."""
    if fmt == "images":
        return _fmt(f"--exclude {', '.join(map(str, exclude))}", f"{path} is a folder of images, which has no column names, "
                    "so there is nothing to leave out by name", "drop --exclude (move images you do not want read out of the folder)")
    return _fmt(f"--exclude {', '.join(map(str, exclude))}", f"{path} is an {fmt.upper()} array, which has no column names, "
                "so there is nothing to leave out by name",
                "drop --exclude and save the array without those columns (np.save(path, X[:, keep]) with the indices "
                "of the columns to keep), or pass a CSV / Parquet file with a header")


def strict_float(s: str) -> float:
    """``float(s)`` for the numbers a CSV reader (pandas) reads as numbers: Python's float also takes
    digit-group underscores ('1_0' is 10) and non-ASCII digits, which pandas leaves as text; those
    raise ValueError here, so a stream line and the file it came from read alike."""
    if "_" in s or not s.isascii():
        raise ValueError(s)
    return float(s)


def _number(s: str) -> bool:
    try:
        strict_float(s)
        return True
    except ValueError:
        return False


def _csv_header(path, sep: str, decimal: str, exclude: Sequence[str], warn: bool = True):
    """0 when the CSV's first line is a header, None when it is already a data row (all numbers);
    refuses a pandas index column (an unnamed first column) that would become a feature. ``warn``:
    log which reading an all-number first line got (the reader does; :func:`csv_columns`, which
    runs before it on the same file, does not, so the warning comes once)."""
    import pandas as pd
    first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    if first.shape[0] == 0:
        return 0
    cells = [str(v).strip() for v in first.iloc[0].tolist()]
    if len(cells) > 1 and cells[0] == "" and all(cells[1:]) and "Unnamed: 0" not in exclude:
        raise InputError(_fmt(str(path), "has an unnamed first column, the index pandas writes with to_csv(); it would be read as a feature",
                              "write the file with df.to_csv(path, index=False), or leave the column out with --exclude 'Unnamed: 0'"))
    raw = [str(v) for v in first.iloc[0].tolist()]
    dup = repeated_names(raw, decimal)
    if dup:
        # pandas would rename the copies 'a.1', 'a.2', ... and read them as different features
        raise InputError(_fmt(str(path), f"has duplicate column name(s) {dup[:5]} in its header",
                              "give every column its own name (or drop the copies) before passing the file"))
    cells = [c.replace(decimal, ".") if decimal != "." else c for c in cells]
    import logging
    if all(_number(c) for c in cells) and cells != [str(i) for i in range(len(cells))]:
        if warn:
            logging.getLogger("ganad").warning("%s: the first line holds only numbers; reading it as data (no header row)", path)
        return None
    if all(_number(c) for c in cells) and warn:
        # '0' (one column) or '0,1,...' is both pandas' default header and a plausible first data row
        # (a one-column file of counts or flags starting with 0): say which reading was taken, since the
        # other one silently drops or adds a row and shifts every score's index by one
        logging.getLogger("ganad").warning(
            "%s: the first line %r is read as a header (pandas' default column names), not as data; "
            "if it is a data row, add a header line such as %r", path, ",".join(cells),
            ",".join(f"x{i}" for i in range(len(cells))))
    return 0


def repeated_names(cells: list[str], decimal: str = ".") -> list[str]:
    """The names a CSV header line repeats (pandas would read the copies as other columns 'a.1', ...);
    none for a first line of numbers only, which is data, not a header."""
    dup = sorted({c for c in cells if cells.count(c) > 1 and c != ""})
    if dup and all(_number(c.strip().replace(decimal, ".") if decimal != "." else c.strip()) for c in cells):
        return []
    return dup


def csv_columns(path, *, exclude: Sequence[str] = (), sep: str | None = None, decimal: str = ".") -> list[str] | None:
    """Column names of a CSV or Parquet file after ``exclude`` (None for header-less CSV, NPY, NPZ, image folders)."""
    fmt = file_format(path)
    try:
        if fmt == "csv":
            import pandas as pd
            sep = sep or ("\t" if Path(path).suffix.lower() == ".tsv" else ",")
            if _csv_header(path, sep, decimal, exclude, warn=False) is None:
                return None
            cols = list(pd.read_csv(path, sep=sep, nrows=0).columns)
        elif fmt == "parquet":
            import pyarrow.parquet as pq
            cols = list(pq.ParquetFile(path).schema_arrow.names)
            cols = [c for c in cols if not str(c).startswith("__index_level_")]
        else:
            return None
    except (InputError, DataFileError):
        raise
    except Exception:
        return None  # read_array reports unreadable files with the right message
    return [str(c) for c in cols if c not in exclude]


def _checked(arr: np.ndarray, path, offset: int, columns=None) -> np.ndarray:
    """A chunk of samples checked at the door under the file's name (NaN / inf / beyond float32,
    non-numeric), as float32 or, for float64 / wide integer data, float64 (the scaler needs every
    digit of a feature such as 1.7e9 + k); 1-D arrays pass through (labels; the detector refuses 1-D data)."""
    from ganad.data.validation import check_array
    if arr.ndim < 2 or arr.size == 0:
        return arr
    if columns is not None and (arr.ndim != 2 or len(columns) != arr.shape[1]):
        columns = None
    return check_array(arr, f"{path}" + (f" (row numbers counted from row {offset})" if offset else ""), dtype="float", columns=columns)


def _npy_header(fh) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) from the header of an NPY stream, without reading its data (None if unreadable:
    numpy's loader then reports the damage)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
    except Exception:
        return None
    return tuple(shape), dtype


def _check_stored(name: str, shape, dtype, allow_1d: bool, key: str | None = None) -> None:
    """Refuse an NPY / NPZ array that cannot be data, naming the file (``name``), the problem and the fix:
    object (pickled) or structured arrays, a single number, no samples or features, 1-D rows.
    ``key``: the array's name in an NPZ archive (the fix then says np.savez)."""
    def save(expr):
        return f"np.save(path, {expr})" if key is None else f"np.savez(path, {key}={expr})"
    if dtype.hasobject:
        raise DataFileError(_fmt(name, f"holds Python objects (an object-dtype array of shape {tuple(shape)}, which NumPy stores "
                                       "with pickle); ganad does not load pickled data, as unpickling a file can run code",
                                 f"save a numeric array instead, e.g. {save('X.astype(np.float64)')} "
                                 "(convert or drop text columns first)"))
    if dtype.names is not None:
        raise DataFileError(_fmt(name, f"holds a structured array (fields {list(dtype.names)[:6]}), not a numeric table",
                                 "save a plain numeric 2-D array (samples, features), e.g. "
                                 f"{save('numpy.lib.recfunctions.structured_to_unstructured(X)')}"))
    if len(shape) == 0:
        raise InputError(_fmt(name, "holds a single number (a 0-D array), not samples",
                              f"save the samples as a 2-D array of shape (samples, features): {save('X')}"))
    if shape[0] == 0:
        raise InputError(_fmt(name, f"holds no samples (shape {tuple(shape)})", "save an array with at least one sample (row)"))
    if 0 in shape:
        raise InputError(_fmt(name, f"holds no features (shape {tuple(shape)})", "save an array with at least one feature (column)"))
    if len(shape) == 1 and not allow_1d:
        raise InputError(_fmt(name, f"is 1-D with shape {tuple(shape)}; ganad expects one sample per row",
                              f"save it as a 2-D array: {save('X.reshape(-1, 1)')} for one feature, or X.reshape(1, -1) for one sample"))


def require_npy_magic(path) -> None:
    """Refuse a file named .npy that is not one: numpy's own error for it suggests ``allow_pickle=True``
    (unsafe, and wrong: the file is not pickled data either)."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        raise DataFileError(_fmt(str(path), "is not an NPY file (it does not start with numpy's magic string \\x93NUMPY)",
                                 "write the array with numpy.save, or give a CSV / Parquet file its own extension"))


def _npy_array(path, allow_1d: bool):
    """An NPY file memory-mapped, checked (:func:`_check_stored`) from its header before it is loaded
    (an object array would otherwise fail inside numpy), or after, if only numpy can read the header."""
    require_npy_magic(path)
    with open(path, "rb") as fh:
        head = _npy_header(fh)
    if head is not None:
        _check_stored(str(path), *head, allow_1d)
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    if head is None:
        _check_stored(str(path), arr.shape, arr.dtype, allow_1d)
    return arr


def _npz_array(path, key, allow_1d: bool):
    """The data array of an NPZ archive (``key``, else 'X' or its only array), checked (:func:`_check_stored`)."""
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataFileError(_fmt(str(path), f"cannot be read as NPZ ({exc})", "check that the file is complete and written by numpy.savez")) from exc
    keys = list(z.keys())
    if key is not None and key not in keys:
        raise DataFileError(_fmt(str(path), f"has no array {key!r} (it holds {keys})", f"pass --key with one of {keys}"))
    if key is None:
        key = "X" if "X" in keys else (keys[0] if len(keys) == 1 else None)
    if key is None:
        raise DataFileError(_fmt(str(path), f"holds arrays {keys}, and it is unclear which is the data", "name the array 'X' or pass --key NAME"))
    name, head = f"{path} (array {key!r})", None
    try:
        with z.zip.open(f"{key}.npy") as fh:
            head = _npy_header(fh)
    except Exception:
        pass  # reading the array below reports it
    if head is not None:
        _check_stored(name, *head, allow_1d, key)
    try:
        arr = z[key]
    except Exception as exc:
        raise DataFileError(_fmt(str(path), f"array {key!r} cannot be read ({exc})", "the file is truncated or corrupt: write it again")) from exc
    if head is None:  # a header only numpy could read
        _check_stored(name, arr.shape, arr.dtype, allow_1d, key)
    return arr


def read_array(path, *, exclude: Sequence[str] = (), key: str | None = None, sep: str | None = None,
               decimal: str = ".", allow_1d: bool = False) -> np.ndarray:
    """Read a whole data file into an array (rows = samples).

    CSV: ``sep`` (default ',' and tab for .tsv) and ``decimal`` as in pandas. A first line of
    numbers only is read as data (no header); an unnamed first column (the index that pandas'
    ``to_csv`` writes) is refused unless excluded. :func:`csv_columns` gives the column names.
    NPY / NPZ: object (pickled), structured, 0-D, empty and (unless ``allow_1d``, for labels)
    1-D arrays are refused, naming the file. A folder of image files: one sample per image, see
    :func:`iter_chunks`."""
    return np.concatenate(list(iter_chunks(path, chunk_rows=None, exclude=exclude, key=key, sep=sep, decimal=decimal,
                                           allow_1d=allow_1d)), axis=0)


def iter_chunks(path, chunk_rows: int | None = 65536, *, exclude: Sequence[str] = (), key: str | None = None,
                sep: str | None = None, decimal: str = ".", allow_1d: bool = False, rgb: bool = False) -> Iterator[np.ndarray]:
    """Yield the samples of a data file in chunks of ``chunk_rows`` (all at once when None).

    CSV and Parquet are read incrementally and NPY is memory-mapped, so files larger than
    memory can be scored. NPZ archives are compressed and read whole. ``allow_1d``: a 1-D
    NPY / NPZ array (labels) is yielded as it is instead of refused.

    A folder holding image files (:data:`IMAGE_SUFFIXES`, any case) reads as images of shape
    (n, C, H, W), channels first, one per file in name order (:func:`image_folder`: hidden entries,
    other files and subfolders are not read), ``chunk_rows`` images at a time. Pixel values are as
    stored (0..255 for 8-bit, 0..65535 for 16-bit images), as float32 (float64 for 32-bit integer
    images). C is 1 when every image is grayscale (modes 1, L, I;16, I, F; a palette of grays) and
    3 (RGB) for all of them when any image has colour; alpha is dropped, palettes are looked up, a
    multi-frame file (GIF, TIFF) gives its first frame, EXIF orientation is not applied. Images of
    different sizes are refused naming the first that differs; a damaged image, naming the file.
    ``rgb``: read a folder of grayscale images as RGB too (for a model fitted on colour images).
    """
    fmt = file_format(path)
    path = Path(path)
    if chunk_rows is not None and (not is_int(chunk_rows) or chunk_rows < 1):
        raise InputError(_fmt("chunk_rows", f"is {chunk_rows!r}", "pass a positive number of rows, such as 65536 (--chunk-rows)"))
    try:
        if fmt == "csv":
            import pandas as pd
            sep = sep or ("\t" if path.suffix.lower() == ".tsv" else ",")
            header = _csv_header(path, sep, decimal, exclude)
            if header is None and exclude:
                raise InputError(_fmt(str(path), f"has no header row, so there are no columns {list(exclude)} to exclude", "drop --exclude or add a header line"))
            if header is not None and first_row_longer(path, sep):  # else read shifted when the extra fields count 0, 1, 2, ...
                top = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
                fix = "check the separator (--sep) and that every row has one value per header column"
                if str(top.iloc[0, 0]).lstrip().startswith("#"):
                    fix = f"the first line ({str(top.iloc[0, 0])[:40]!r}) looks like a comment: remove the comment line(s) at the top of the file"
                raise InputError(_fmt(str(path), f"has rows with more fields than the header's {top.shape[1]} columns (first at data row 0)",
                                      fix)) from None
            reader = pd.read_csv(path, sep=sep, decimal=decimal, header=header, chunksize=chunk_rows or None)
            chunks = [reader] if chunk_rows is None else reader
            n = 0
            try:  # a chunk reader holds the file open: closed when a chunk is refused or the caller stops early too
                for df in chunks:
                    n += len(df)
                    yield _checked(_frame_to_array(df, path, exclude, sep, decimal, n - len(df), chunk_rows is None), path, n - len(df),
                                   None if header is None else [c for c in df.columns if c not in exclude])  # a NaN named by its column
            finally:
                if chunk_rows is not None:
                    reader.close()
            if n == 0:
                raise InputError(_fmt(str(path), "has a header but no data rows", "pass a file with at least one sample"))
        elif fmt == "parquet":
            import pyarrow.parquet as pq
            pf = pq.ParquetFile(path)
            n = 0
            try:
                if pf.metadata.num_rows == 0:
                    raise InputError(_fmt(str(path), "has no rows", "pass a file with at least one sample"))
                for batch in pf.iter_batches(batch_size=chunk_rows or max(pf.metadata.num_rows, 1)):
                    # the file's columns in its schema's order, as csv_columns lists them: an index pandas stored is not
                    # made the frame's index (a filtered frame's '__index_level_0__' is left out; a named one, from
                    # df.set_index('id'), is a column, which --exclude / --id-column take)
                    df = arrow_decimals_as_float(batch).to_pandas(ignore_metadata=True)
                    df = df[[c for c in df.columns if not str(c).startswith("__index_level_")]]
                    yield _checked(_frame_to_array(df, path, exclude, offset=n, whole=chunk_rows is None), path, n,
                                   [c for c in df.columns if c not in exclude])
                    n += batch.num_rows
            finally:
                pf.close()
        elif exclude:  # an array has no column names: --exclude would be ignored without a word
            raise InputError(_no_columns_to_exclude(path, fmt, exclude))
        elif fmt == "images":
            files, first_colour = image_plan(path)
            step = chunk_rows or max(len(files), 1)
            for s in range(0, len(files), step):
                part = [_image_pixels(f, rgb or first_colour is not None) for f in files[s:s + step]]
                dtype = np.result_type(*[a.dtype for a in part])
                yield _checked(np.stack(part).astype(dtype, copy=False), path, s)
        elif fmt == "npy":
            arr = _npy_array(path, allow_1d)
            step = chunk_rows or max(len(arr), 1)
            for s in range(0, len(arr), step):
                yield _checked(np.asarray(arr[s:s + step]), path, s)
        else:
            arr = _npz_array(path, key, allow_1d)
            step = chunk_rows or max(len(arr), 1)
            for s in range(0, len(arr), step):
                yield _checked(arr[s:s + step], path, s)
    except (InputError, DataFileError):
        raise
    except UnicodeDecodeError as exc:
        raise DataFileError(_fmt(str(path), "is not a text CSV file (cannot decode it)", "pass a UTF-8 CSV, or a Parquet / NPY / NPZ file")) from exc
    except Exception as exc:  # pandas / pyarrow / numpy parsing errors on truncated or malformed files
        raise DataFileError(_fmt(str(path), f"cannot be read as {fmt.upper()} ({type(exc).__name__}: {exc})",
                                 "check the file is complete and in the format its extension says")) from exc
