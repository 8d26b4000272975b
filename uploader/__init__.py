"""signal-uploader: report call conversions from CSV/XLSX files to the Signal API.

The pipeline, one module per stage, data flowing one way::

    read -> timestamps / validate -> matcher -> sender -> report

The command line (:mod:`uploader.cli`) is a thin layer over :class:`uploader.run.Run`, which drives :mod:`uploader.pipeline`.
So is the Python API (:mod:`uploader.api`): ``from uploader import upload_rows, validate_rows``, and
``find_calls`` and ``lookup_calls`` for the calls on now.
"""

from ._version import __version__

__all__ = ["RowsResult", "Run", "__version__", "find_calls", "lookup_calls", "upload_rows", "validate_rows"]


def __getattr__(name: str):
    # Loaded on first use, so that `import uploader` (and the CLI's start-up) stays cheap.
    if name in ("RowsResult", "find_calls", "lookup_calls", "upload_rows", "validate_rows"):
        from . import api

        return getattr(api, name)
    if name == "Run":
        from .run import Run

        return Run
    raise AttributeError(f"module 'uploader' has no attribute {name!r}")
