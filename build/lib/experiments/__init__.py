"""Configs, runners and benchmarks: one run, sweeps over profiles, the parameter table, `make bench`."""
