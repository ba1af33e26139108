"""vidistill.models."""
