"""vidistill.benchmarks."""
