"""vidistill.convert."""
