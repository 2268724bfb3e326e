"""Benchmarks run by `monitor bench ...`; results land in bench/results/ as JSON."""
