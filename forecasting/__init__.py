"""Request-rate forecasting for Prescaler, independent of Kubernetes and of the controller.

`series` and `traces` bring data onto a 1-minute grid; `features` and `rolling` turn it
into model inputs; `lgbm_forecaster` and `baselines` forecast quantiles of the rate a
few minutes ahead (`registry` names the kinds a config may select); `backtest`,
`metrics` and `gate` judge them. Nothing here imports `autoscaler`.
"""
