"""vidistill.eval."""
