"""The pure decision core: decide, HPA behavior, actuation. No I/O, no clock, no YAML (an import contract)."""
