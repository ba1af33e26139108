"""Runs the toy training as its own process, for the kill/resume and multi-process tests.

    python tests/train/toy_run.py WORKDIR --steps 24 [--devices 8] [--delay 0.001]
        [--num_processes 2 --process_id 0 --coordinator 127.0.0.1:PORT]

Writes WORKDIR/final_params.npz (process 0) when training completes; rerunning the same command
resumes from WORKDIR's checkpoints.
"""
import argparse
import os
import sys


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("workdir")
  parser.add_argument("--steps", type=int, default=24)
  parser.add_argument("--checkpoint_every", type=int, default=3)
  parser.add_argument("--devices", type=int, default=8)
  parser.add_argument("--delay", type=float, default=0.0)
  parser.add_argument("--num_processes", type=int, default=1)
  parser.add_argument("--process_id", type=int, default=0)
  parser.add_argument("--coordinator", default="")
  args = parser.parse_args()
  os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
  os.environ["JAX_PLATFORMS"] = "cpu"
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

  import numpy as np  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  import toy  # pylint: disable=g-import-not-at-top
  from vidistill.parallel import multihost  # pylint: disable=g-import-not-at-top
  from vidistill.models import param_paths  # pylint: disable=g-import-not-at-top
  from vidistill.train import trainer  # pylint: disable=g-import-not-at-top

  logging.set_verbosity(logging.INFO)
  if args.num_processes > 1:
    multihost.initialize(multihost.resolve_setup(args.coordinator, args.num_processes,
                                                 args.process_id, env={}))
  config = toy.run_config(args.steps, args.checkpoint_every)
  data = toy.toy_data(toy.ToySource(delay=args.delay), batch_size=config.batch_size)
  result = trainer.train(config, args.workdir, toy.ToyModel(), data)
  params = multihost_utils.process_allgather(result.state.params, tiled=True)
  if args.process_id == 0:
    flat = {k: np.asarray(v) for k, v in param_paths.flatten(params).items()}
    np.savez(os.path.join(args.workdir, "final_params.npz"), **flat)
  print(f"DONE step={result.step} from={result.resumed_from}", flush=True)


if __name__ == "__main__":
  main()
