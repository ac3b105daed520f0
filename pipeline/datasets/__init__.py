"""Dataset readers for the real on-disk formats and the synthetic dataset generator."""
