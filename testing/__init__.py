"""Real stand-ins for what users have: the Kubernetes API emulator and a real Prometheus server for tests.

Tests and benchmarks both import this package (it sits beside `autoscaler/` and
`forecasting/`, importable in the development install); it is not part of the wheel or
the image, and production code never imports it.
"""
