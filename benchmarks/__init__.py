"""Benchmarks for the alert worker: a realistic data generator, the specification's per-alert
algorithm as a reference peer, and a runner that times both on copies of the same data.

Run `python -m benchmarks.run --help`.
"""
