"""vidistill.caption."""
