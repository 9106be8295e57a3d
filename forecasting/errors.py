"""Errors the forecasting layer raises, so callers can fall back without guessing."""


class NotEnoughHistory(ValueError):
    """The history is too short (or too sparse) to forecast from; the caller should go reactive."""


class ForecastError(RuntimeError):
    """A model failed to train or predict."""
