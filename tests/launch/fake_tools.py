"""Fake cluster tools (gcloud, srun, scontrol, vidistill) that record how they were called.

Each fake appends one JSON line {"tool", "argv", "env"} to $FAKE_LOG; fake srun also runs its
command once per task (SLURM_PROCID / SLURM_LOCALID set) the way srun does on a real allocation.
"""
import json
import os
import stat
import sys

_RECORD = r'''#!{python}
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
  f.write(json.dumps({{"tool": {tool!r}, "argv": sys.argv[1:],
                      "env": {{k: v for k, v in os.environ.items()
                              if k.startswith(("VIDISTILL_", "SLURM_", "CUDA_", "TF_"))}}}}) + "\n")
'''

_SRUN_TAIL = r'''
import subprocess
args = sys.argv[1:]
while args and args[0].startswith("-"):
  args.pop(0)
ntasks, per_node = int(os.environ["SLURM_NTASKS"]), int(os.environ.get("SLURM_NTASKS_PER_NODE", "1"))
codes = [subprocess.call(args, env=dict(os.environ, SLURM_PROCID=str(i), SLURM_LOCALID=str(i % per_node)))
         for i in range(ntasks)]
sys.exit(max(codes))
'''

_SCONTROL_TAIL = r'''
if sys.argv[1:3] == ["show", "hostnames"]:
  print("gpu-node-7\ngpu-node-8")
'''


def install(bin_dir, log_path) -> dict:
  """Writes the fakes into `bin_dir`; returns an environment with them first on PATH."""
  os.makedirs(bin_dir, exist_ok=True)
  tails = {"gcloud": "", "srun": _SRUN_TAIL, "scontrol": _SCONTROL_TAIL, "vidistill": ""}
  for tool, tail in tails.items():
    path = os.path.join(bin_dir, tool)
    with open(path, "w") as f:
      f.write(_RECORD.format(python=sys.executable, tool=tool) + tail)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
  env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "VIDISTILL_"))}
  env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", FAKE_LOG=str(log_path))
  return env


def calls(log_path, tool=None) -> list:
  if not os.path.exists(log_path):
    return []
  with open(log_path) as f:
    rows = [json.loads(line) for line in f]
  return [r for r in rows if tool is None or r["tool"] == tool]
