"""Other autoscalers' forecasters, so Prescaler can be run beside them on the same simulator.

Each module reimplements one peer from its documented algorithm (see docs/peers.md for the
sources and where each departs from the original) behind the same `BaseForecaster`
contract as Prescaler's own models; the shared decision core turns their forecasts into
replicas, with the same reactive floor and HPA `behavior` limits:

- `crane_dsp`: Crane EffectiveHPA's DSP predictor (FFT period detection, dominant
  frequencies, the maximum over `predictionWindowSeconds`);
- `holt_winters`: the Predictive Horizontal Pod Autoscaler's Holt-Winters model on the
  replicas the HPA would compute;
- `aws_scheduled`: an approximation of AWS predictive scaling (hourly forecast scheduled
  `SchedulingBufferTime` ahead);
- `reference_lgbm`: the outsider's reference model of issue 13 (LightGBM q0.9 of the
  demand peak one start-up ahead).
"""
