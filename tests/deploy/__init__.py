"""Tests of the in-cluster packaging: Dockerfile, deploy/ kustomizations, RBAC, e2e script."""
