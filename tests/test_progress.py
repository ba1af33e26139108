"""vidistill/progress.py: the one progress counter (rate, ETA, excluded time, pacing) and the one
duration format of the console."""
import math

from vidistill import progress


def test_format_duration():
  assert progress.format_duration(3725) == "1h02m05s"
  assert progress.format_duration(185.4) == "3m05s"
  assert progress.format_duration(45) == "45s"
  assert progress.format_duration(-3) == "0s"
  for unknown in (None, math.inf, math.nan):
    assert progress.format_duration(unknown) == "?"


def test_rate_and_eta_count_from_the_start_less_excluded_time():
  now = [100.0]
  p = progress.Progress(100, done=10, clock=lambda: now[0])  # Resumed at 10: not this run's.
  assert p.eta_seconds == math.inf
  now[0] += 4.0
  p.add(20)
  with p.excluded():
    now[0] += 6.0
  assert p.elapsed == 4.0 and p.rate == 5.0 and p.eta_seconds == 70 / 5.0


def test_due_paces_reports():
  now = [0.0]
  p = progress.Progress(10, clock=lambda: now[0])
  now[0] += 2.0
  assert not p.due(5.0)
  now[0] += 3.0
  assert p.due(5.0) and not p.due(5.0)
  now[0] += 5.0
  assert p.due(5.0)
