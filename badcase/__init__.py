"""Badcase detection: per-response descriptors, rules, review queue and agreement."""
