"""Measurement scripts, apart from the harnesses: throughput of data generation, mesh
extraction and metrics (with the ShapeNet benchmark's per-stage table), SDN training, the SDN
training-aid ablation and face realism. Each is ``python -m benchmarks.perf.<name>``; figures
are reported in README, never asserted in tests."""
