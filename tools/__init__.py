"""Maintenance scripts of the repository (not part of the installed package): rendered previews of the
notebooks (``tools/previews.py``) and a check of a notebook in a real browser (``tools/browser_check.py``)."""
