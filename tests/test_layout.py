"""Test modules have unique basenames: pytest's default import mode cannot collect two
`test_report.py` in one run, and a clash stops the whole suite at collection."""
import collections
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def test_test_module_basenames_are_unique():
  names = collections.defaultdict(list)
  for root, _, files in os.walk(HERE):
    for name in files:
      if name.endswith(".py") and name != "conftest.py":
        names[name].append(os.path.relpath(os.path.join(root, name), HERE))
  clashes = {n: p for n, p in names.items() if len(p) > 1}
  assert not clashes, f"rename one of each: {clashes}"
