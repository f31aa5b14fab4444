"""Fixed-horizon inference on summary statistics: pure, vectorized, no frames."""
