"""Retraining: versioned preference datasets, reward-model refresh, DPO, launch helpers (torch is imported lazily)."""
