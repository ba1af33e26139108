"""Test helpers for the T5 / VLM tests: parameters without compiling an init.

On the shared 2-core CPU an XLA compile of a model's `init` (one random-number kernel per
parameter) takes ~15 s even for a one-layer T5; random numpy parameters with the same shapes take
milliseconds, and every test here is about functions of given parameters anyway.
"""
import flax
import jax
import numpy as np


def random_params(abstract, seed=0):
  """Unboxed numpy params shaped like `abstract` (e.g. `jax.eval_shape(model.init, ...)`).

  Scales keep activations O(1): kernels ~ N(0, 1/fan_in) (fan-in = the leading dimension, or
  heads * kv for attention outputs), norm scales ~ 1 + N(0, 0.1^2), biases small, embeddings
  N(0, 1) like T5's.
  """
  rng = np.random.default_rng(seed)
  is_box = lambda x: isinstance(x, flax.linen.Partitioned)  # noqa: E731

  def one(path, leaf):
    names = getattr(leaf, "names", None)
    shape = getattr(leaf, "value", leaf).shape
    key = str(path[-1].key)
    x = rng.normal(size=shape)
    if key in ("scale",):
      x = 1.0 + 0.1 * x
    elif key in ("bias", "rel_embedding", "temporal_embedding"):
      x = 0.1 * x
    elif key == "embedding" and len(shape) == 2 and names == ("vocab", "embed"):
      pass
    else:
      fan_in = shape[0] * shape[1] if names and names[0] == "heads" else shape[0]
      if len(shape) == 4:  # conv kernel [h, w, c_in, c_out]
        fan_in = int(np.prod(shape[:3]))
      x = x / np.sqrt(max(fan_in, 1))
    return np.asarray(x, np.float32)

  return jax.tree_util.tree_map_with_path(one, abstract, is_leaf=is_box)["params"]
