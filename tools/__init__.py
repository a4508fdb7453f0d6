"""Maintenance scripts of the course, run from the repository root, e.g. ``python -m tools.cn_sync --check``."""
