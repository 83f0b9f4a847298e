"""What the MIT-BIH database holds: AAMI beat classes, the records, the inter-patient split (de Chazal et al. 2004)."""

from __future__ import annotations

#: AAMI EC57 beat classes, in their usual order
AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

#: annotation symbol -> AAMI class; symbols not listed here are not beats
AAMI_MAP: dict[str, str] = {
    **dict.fromkeys(("N", "L", "R", "e", "j"), "N"),
    **dict.fromkeys(("A", "a", "J", "S"), "S"),
    **dict.fromkeys(("V", "E"), "V"),
    "F": "F",
    **dict.fromkeys(("/", "f", "Q"), "Q"),
}

#: records with a pacemaker, excluded by AAMI EC57 and de Chazal et al. (2004)
PACED_RECORDS: tuple[str, ...] = ("102", "104", "107", "217")

#: de Chazal et al. (2004) inter-patient split, first half (training / validation)
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
#: de Chazal et al. (2004) inter-patient split, second half (testing)
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)

#: all 48 records of the database
ALL_RECORDS: tuple[str, ...] = tuple(sorted(DS1 + DS2 + PACED_RECORDS))

#: environment variable naming a local copy of the database
ENV_VAR = "GANAD_MITBIH_DIR"

_PHYSIONET_DB = "mitdb"
#: bytes per sample of the WFDB signal formats whose file size is checked before reading
_BYTES_PER_SAMPLE = {"212": 1.5, "16": 2.0, "80": 1.0}
_SUMS_FILE = "SHA256SUMS.txt"
