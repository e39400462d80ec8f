"""Benchmarks of the hw_offload accelerator (simulated): speed, utilization, cycles per block."""
