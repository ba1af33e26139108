"""vidistill.parallel."""
