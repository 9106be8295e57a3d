"""Trace replay: the production Reconciler driven on a virtual clock against simulated pods."""
