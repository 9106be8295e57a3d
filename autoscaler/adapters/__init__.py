"""The only code that talks to Prometheus or Kubernetes: implementations of the loop's ports."""
