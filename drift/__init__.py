"""Drift: windowed drift evaluation over stored descriptors, sycophancy probes, alert rules and alert delivery."""
