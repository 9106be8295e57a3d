"""Cleaning rates: non-finite or negative values are missing, and a clean float32 history is never copied."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.forecaster import clean_same_dtype, clean_values

CASES = [
    ("clean", [1.0, np.nan, 0.0, 3.5], [1.0, np.nan, 0.0, 3.5]),
    ("negative", [1.0, -2.0, 3.0], [1.0, np.nan, 3.0]),
    ("infinite", [np.inf, 2.0, -np.inf], [np.nan, 2.0, np.nan]),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_clean_same_dtype_agrees_with_clean_values_and_keeps_the_dtype(raw, expected, dtype):
    values = np.array(raw, dtype=dtype)
    out = clean_same_dtype(values)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, np.array(expected, dtype=dtype))
    np.testing.assert_array_equal(out.astype(np.float64), clean_values(values))


def test_a_clean_history_is_returned_itself_and_a_dirty_one_is_never_changed_in_place():
    clean = np.array([1.0, np.nan, 2.0], dtype=np.float32)
    assert clean_same_dtype(clean) is clean
    dirty = np.array([1.0, -1.0], dtype=np.float32)
    assert clean_same_dtype(dirty) is not dirty and dirty[1] == -1.0
