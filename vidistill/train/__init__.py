"""vidistill.train."""
