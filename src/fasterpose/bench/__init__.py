"""Benchmarks: model complexity (params/FLOPs) and CPU latency."""
