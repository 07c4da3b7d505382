"""Policies of other libraries as this project's parameters, read without pickle: Stable-Baselines3
model zips (`sb3`) through a safe reader of torch state_dict files (`torch_zip`)."""
