"""Benchmarks (not tests): run ``make bench`` or ``python bench/stock.py``."""
