"""Reports from run records: the paper's tables, the low-resource figure, the dashboard page and a README.

Reads only the JSON run records (or the same fields from W&B), never the training code,
so reports can be rebuilt anywhere from a results folder. Entry point:
``python -m analysis.build_reports``.
"""
