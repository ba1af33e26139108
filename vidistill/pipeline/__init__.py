"""`vidistill pipeline`: the method end to end on the synthetic world, and its report."""
