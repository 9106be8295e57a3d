"""The reconcile loop and its ports: fetch, forecast, decide, write once, record; driven with `now` passed in."""
