"""timings.json and the ETA: expected costs from the last run's timings or the weights, and the
schedule of the remaining steps on the workers (pure functions)."""
import pytest

from vidistill.pipeline import timings


def test_record_and_read(tmp_path):
  assert timings.read(str(tmp_path)) == {}
  timings.record(str(tmp_path), timings.step_key(None, "world"), 1.23456)
  timings.record(str(tmp_path), timings.step_key(0, "a"), 2.0)
  assert timings.read(str(tmp_path)) == {"all/world": 1.235, "0/a": 2.0}


def test_expected_costs_from_timings_then_weights():
  weights = {"world": 1.0, "a": 2.0, "b": 0.5, "c": 4.0}
  # Nothing timed: the static table.
  fresh = timings.expected_costs(weights, {})
  assert fresh == {k: w * timings.SECONDS_PER_WEIGHT for k, w in weights.items()}
  # a timed over two seeds (mean 30 s, 15 s a unit), world 10 s a unit: median rate 12.5.
  last = {"0/a": 20.0, "1/a": 40.0, "all/world": 10.0, timings.WALL_CLOCK: 999.0}
  costs = timings.expected_costs(weights, last)
  assert costs["a"] == 30.0 and costs["world"] == 10.0
  assert costs["b"] == pytest.approx(0.5 * 12.5) and costs["c"] == pytest.approx(4 * 12.5)


def test_eta_follows_needs_and_workers():
  # a (10) -> b (5); c (8) independent; d (1) needs b and c.
  pending = [("a", 10.0, frozenset()), ("b", 5.0, frozenset({"a"})),
             ("c", 8.0, frozenset()), ("d", 1.0, frozenset({"b", "c"}))]
  assert timings.eta_seconds(pending, [], workers=1) == 24.0  # Sum: one at a time.
  # Two workers: a and c at once; b after a (t=15), d after both (t=16).
  assert timings.eta_seconds(pending, [], workers=2) == 16.0
  # a already 7 s in (3 left), running beside nothing.
  assert timings.eta_seconds(pending[1:], [("a", 3.0)], workers=2) == 9.0
  # A running step past its expected cost counts as finishing now.
  assert timings.eta_seconds([], [("a", -4.0)], workers=2) == 0.0


def test_eta_does_not_move_when_a_step_finishes_at_its_expected_cost():
  """The ETA is a schedule, not an extrapolation: the first short step finishing early or late
  changes it by exactly that step's difference, never by a factor."""
  pending = [("world", 5.0, frozenset()), ("a", 100.0, frozenset({"world"})),
             ("b", 50.0, frozenset({"world"}))]
  before = timings.eta_seconds(pending, [], workers=2)
  after_world = timings.eta_seconds(pending[1:], [], workers=2)
  assert before == 105.0 and after_world == 100.0


def test_eta_stops_on_needs_that_never_run():
  stuck = [("x", 3.0, frozenset({"z"})), ("z", 3.0, frozenset({"x"}))]
  assert timings.eta_seconds(stuck, [("y", 2.0)], workers=2) == 2.0
