"""Runs: a simulation planned into engine requests, run through the results store, and
its results (tidy frames, Parquet set, manifest)."""
