"""The library behind each job: the stages wired together, one module per job.

``validate_file`` (:mod:`.stream`), ``upload_file`` (:mod:`.upload`),
``retry_report`` (:mod:`.retry`) and ``upload_folder`` (:mod:`.inbox`) run
the pipeline (``find_calls`` and ``lookup_file``, in :mod:`.calls`, list and
look up calls instead)::

    read -> validate (the target's schema) -> the target's cross-row checks -> prepare -> journal plan
         -> Sender -> report

and return a result. They raise only :class:`~uploader.errors.UploaderError`
for file-level and usage problems. Front ends drive them through
:class:`~uploader.run.Run`, which adds events and cancelling.

>>> from uploader.config import resolve
>>> result = validate_file("sample_files/signals.csv", resolve({"timezone": "America/Los_Angeles"}))
>>> result.exit_code, result.summary.statuses
(1, {'valid': 10, 'invalid': 3})
"""

from .calls import CallsQuery, CallsResult, find_calls, lookup_file
from .inbox import FolderResult, upload_folder
from .retry import retry_report
from .stream import JobResult, check_file, check_table, file_warnings, validate_file
from .upload import prepare, upload_file

__all__ = [
    "CallsQuery",
    "CallsResult",
    "FolderResult",
    "JobResult",
    "check_file",
    "check_table",
    "file_warnings",
    "find_calls",
    "lookup_file",
    "prepare",
    "retry_report",
    "upload_file",
    "upload_folder",
    "validate_file",
]
