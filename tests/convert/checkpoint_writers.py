"""Writers of checkpoints in the formats the converters read, for tests (no converter code used
to write them beyond the name layout each format defines)."""
import json
import os

import flax
import ml_dtypes
import numpy as np


def write_t5x(directory, params, step, dtype="float32"):
  """Writes a checkpoint the way t5x/checkpoints.py does: one zarr array per parameter named
  `target.<path with dots>` (attention kernels with heads and kv joined), a msgpack index
  {"version": 3, "optimizer": {"target": ..., "state": ...}} holding tensorstore specs with
  relative paths, and small unpartitioned arrays inline."""
  import tensorstore as ts
  ckpt = os.path.join(directory, f"checkpoint_{step}")
  os.makedirs(ckpt)
  target = {}
  for path, value in flax.traverse_util.flatten_dict(params, sep="/").items():
    value = np.asarray(value)
    if path.endswith(("query/kernel", "key/kernel", "value/kernel")):
      value = value.reshape(value.shape[0], -1)
    elif path.endswith("out/kernel"):
      value = value.reshape(-1, value.shape[-1])
    if path.endswith("scale"):  # t5x keeps unpartitioned params in the msgpack itself
      target[path] = value
      continue
    name = "target." + path.replace("/", ".")
    spec = {"driver": "zarr", "dtype": dtype, "kvstore": {"driver": "file", "path": name},
            "metadata": {"compressor": {"id": "gzip"}, "shape": list(value.shape),
                         "chunks": list(value.shape)}}
    absolute = json.loads(json.dumps(spec))
    absolute["kvstore"]["path"] = os.path.join(ckpt, name)
    store = ts.open(absolute, create=True, open=True).result()
    store.write(value.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else value.dtype)).result()
    target[path] = spec
  contents = {"version": 3, "optimizer": {
      "target": flax.traverse_util.unflatten_dict(target, sep="/"),
      "state": {"step": np.int32(step), "param_states": {"encoder": None}}}}
  with open(os.path.join(ckpt, "checkpoint"), "wb") as f:
    f.write(flax.serialization.msgpack_serialize(contents))
  return ckpt
