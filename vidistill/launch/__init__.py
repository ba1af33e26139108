"""Launchers: N local processes (`vidistill launch local`) and config sweeps (`vidistill sweep`).

The TPU pod and SLURM launchers are shell scripts in launch/ (docs/scaling.md); both end in the
same `vidistill <command>` on every host, with jax.distributed set up by vidistill/parallel/multihost.
"""
