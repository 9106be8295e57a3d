"""Prescaler: a predictive autoscaler for Kubernetes. See docs/architecture.md for the layers."""
