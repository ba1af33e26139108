"""`python -m vidistill.benchmarks [NAME ...] --out DIR [--full]` (same as `vidistill bench`)."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from vidistill.benchmarks import command  # pylint: disable=wrong-import-position

if __name__ == "__main__":
  command.run("python -m vidistill.benchmarks", sys.argv[1:])
