"""Retraining: dataset snapshots, jobs and runners, reward-model refresh, DPO, registry (torch imported lazily)."""
