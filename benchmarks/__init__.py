"""Speed, memory, scaling and cache benchmarks of the studio against the libraries it wraps and a peer dashboard.

Run ``python -m benchmarks --quick`` (minutes) or ``python -m benchmarks`` (the full sizes); results go to
``benchmarks/RESULTS.md``. See :mod:`benchmarks.run`.
"""
