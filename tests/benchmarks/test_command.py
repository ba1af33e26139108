"""Tests for vidistill/benchmarks/command.py: name checks and the written results."""
import json
import os

import pytest

from vidistill import flags_lib
from vidistill.benchmarks import command


def test_unknown_name_is_a_usage_error():
  with pytest.raises(flags_lib.UsageError, match="bogus"):
    command.check_names(["peak", "bogus"])
  assert command.check_names([]) == list(command.BENCHMARKS)


def test_run_benchmarks_writes_json_and_markdown(tmp_path):
  _, json_path, md_path = command.run_benchmarks(["peak"], str(tmp_path), command="test")
  assert os.path.exists(md_path)
  data = json.load(open(json_path))
  assert [r["name"] for r in data["results"]] == ["peak"] and data["mode"] == "short"
