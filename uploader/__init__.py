"""signal-uploader: report call conversions from CSV/XLSX files to the Signal API.

The pipeline, one module per stage, data flowing one way::

    read -> timestamps / validate -> matcher -> sender -> report

The command line (:mod:`uploader.cli`) is a thin layer over :class:`uploader.run.Run`, which drives :mod:`uploader.pipeline`.
"""

__version__ = "0.1.0"
