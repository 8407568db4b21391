"""Benchmarks: predictlib vs the original feature-engine + scikit-learn pipeline.

Run ``nox -s bench`` (or ``python -m benchmarks.run``); see :mod:`benchmarks.run`.
"""
