"""Prometheus adapter tests against a real server (a package, so `prometheus_server` in tests/ imports)."""
