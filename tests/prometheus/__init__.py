"""Prometheus adapter tests against a real server (`testing.prometheus_server`) and a stub (`testing.prometheus_stub`)."""
