"""Many runs: a profile's grid and plan, its checks, the per-run launchers (local workers, SLURM, W&B sweep agents), ``python -m experiments.sweep``."""
