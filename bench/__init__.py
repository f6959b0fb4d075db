"""Benchmarks: `make bench` prints one table, each figure beside a baseline measured in the same run."""
