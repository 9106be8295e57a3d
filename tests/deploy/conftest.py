"""Fixtures: every kustomization in deploy/ rendered once per session."""

from __future__ import annotations

from typing import Any

import pytest

from .manifests import KUSTOMIZATIONS, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Kustomization name (see `KUSTOMIZATIONS`) -> its rendered resources."""
    return {name: render(path) for name, path in KUSTOMIZATIONS.items()}
