"""Import TensorFlow without its C++ start-up noise, and keep it off the accelerators.

TensorFlow (pulled in by seqio and tfds) prints CUDA-probe lines through absl's C++ logger before any
log level applies, so TF_CPP_MIN_LOG_LEVEL alone does not silence them. The command line imports TF
here, with file descriptor 2 pointed at a buffer for the duration of the import; the buffer is
replayed if the import fails, so a broken install still shows its real error.
"""
from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType


def import_tensorflow() -> ModuleType:
  if "tensorflow" in sys.modules:
    return sys.modules["tensorflow"]
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as buffer:
    os.dup2(buffer.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      # JAX owns the accelerators; TF only feeds data (big_vision does the same).
      tf.config.set_visible_devices([], "GPU")
    except BaseException:
      os.dup2(saved, 2)
      buffer.seek(0)
      sys.stderr.write(buffer.read().decode(errors="replace"))
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)
  return tf
