"""Reliability and security suite: faults, invariants, soak (a package, so `tests/` helpers import)."""
