"""A ``.csv.gz``: decompressed once to a private temporary file, bounded, removed at exit."""

from __future__ import annotations

import zlib
from pathlib import Path

from ..errors import FileFormatError

MAX_GUNZIPPED = 4 << 30  # a 1,000,000-row CSV is about 100 MB


def _gunzip(path: Path) -> Path:
    """Decompress a .csv.gz to a private temporary file, refusing what expands without bound."""
    import gzip
    import tempfile

    handle = tempfile.NamedTemporaryFile(prefix="signal-uploader-", suffix=Path(path.stem).suffix, delete=False)  # noqa: SIM115 (closed by the with below, once its name is kept)
    target = Path(handle.name)
    written = 0
    try:
        with handle, gzip.open(path, "rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                written += len(block)
                if written > MAX_GUNZIPPED:
                    raise FileFormatError(f"{path}: refused: it expands to more than {MAX_GUNZIPPED >> 30} GiB")
                handle.write(block)
    except (OSError, EOFError, zlib.error) as exc:
        target.unlink(missing_ok=True)
        raise FileFormatError(
            f"{path}: not a readable gzip file ({exc})", hint="give the CSV itself, or compress it again with gzip"
        ) from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    _GUNZIPPED.append(target)  # removed when the process exits
    return target


_GUNZIPPED: list[Path] = []


def _remove_gunzipped() -> None:
    for target in _GUNZIPPED:
        target.unlink(missing_ok=True)


import atexit  # noqa: E402

atexit.register(_remove_gunzipped)
