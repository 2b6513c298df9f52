"""Runs inside a pinned framework environment: imports only the standard library, numpy,
its framework and reproscope.runtime itself (tests/test_boundaries.py holds it to that)."""
