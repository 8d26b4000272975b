"""The sample files, installed with the package as ``uploader.sample_files``.

``signal-uploader demo`` uploads them to the emulator; ``make_signals_xlsx.py``
writes ``signals.xlsx``.
"""
