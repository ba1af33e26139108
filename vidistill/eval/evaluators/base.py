"""The base of the evaluator kinds: an entry's name, options and the suite settings; model check,
record loading.
"""
from __future__ import annotations

from typing import Any, ClassVar, Iterator, Sequence

from vidistill.config_args import ConfigError
from vidistill.data.annotations import record_id
from vidistill.data.records import VideoRecord
from vidistill.eval.evaluators import inputs
from vidistill.eval.evaluators.common import (DataOptions, EvalDataError, Settings,
                                              check_batch_size)


class Evaluator:
  """Base of the evaluator kinds: holds the entry's name, options and the suite settings.

  Subclasses set `kind`, `options_class` and `model_protocol` and implement `run(model)`, which
  yields `(metric name, value)`. `output_dir`, when given, receives files for people to read
  (predictions); metrics go through `run` only.
  """
  kind: ClassVar[str]
  options_class: ClassVar[type] = DataOptions
  model_protocol: ClassVar[type]

  def __init__(self, name: str, options: DataOptions, settings: Settings,
               output_dir: str | None = None):
    self.name, self.options, self.settings, self.output_dir = name, options, settings, output_dir
    self.where = f"config.evals.{name}"
    check_batch_size(settings, self.batch_size, f"{self.where}.batch_size")

  @property
  def batch_size(self) -> int:
    return self.options.batch_size or self.settings.batch_size

  def check_model(self, model: Any) -> None:
    if not isinstance(model, self.model_protocol):
      methods = sorted(m for m in vars(self.model_protocol) if not m.startswith("_"))
      raise ConfigError(
          f"evaluator {self.name!r} (kind {self.kind!r}) needs a {self.model_protocol.__name__} "
          f"with {methods}; the loaded model {type(model).__name__} lacks them (check "
          "config.model.kind)")

  def check_choice(self, key: str, choices: Sequence[Any]) -> None:
    value = getattr(self.options, key)
    if value not in choices:
      raise ConfigError(f"{self.where}.{key}={value!r} is not one of {tuple(choices)}")

  def load(self, model: Any, field: str | None = None, need: str = "") -> list[VideoRecord]:
    """Checks the model, reads the records and, with `field`, that each record has it set.

    `need` ends the error message: what the evaluator needs the field for.
    """
    self.check_model(model)
    records = inputs.load_records(self.options, self.where)
    for record in records if field else ():
      if not getattr(record, field):
        raise EvalDataError(f"{self.where}: record {record_id(record)!r} of "
                            f"{self.options.annotations!r} has no {field}; {need}")
    return records

  def run(self, model: Any) -> Iterator[tuple[str, float]]:
    raise NotImplementedError
