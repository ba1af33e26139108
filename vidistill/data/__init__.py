"""Data: video I/O, the synthetic video world, shards, annotation readers, instructions, seqio tasks."""
