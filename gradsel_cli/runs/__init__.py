"""Many runs: grids of trials, executors (local, Dask), the results store, tuning."""
