"""The config layer: the typed models, reading YAML into them, PromQL templates, durations.

It imports nothing from the other layers of `autoscaler`.
"""
