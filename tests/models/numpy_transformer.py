"""Float64 NumPy reference of the pre-LN transformer pieces (independent of flax), for tests.

Written from the definitions (LayerNorm, softmax attention, tanh-GELU, MAP pooling), taking the
parameter dicts in big_vision's layout.
"""
import numpy as np


def f64(tree):
  if isinstance(tree, dict):
    return {k: f64(v) for k, v in tree.items()}
  return np.asarray(tree, np.float64)


def layer_norm(x, p, eps=1e-6):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def gelu_tanh(x):
  return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def softmax(x, axis=-1):
  e = np.exp(x - x.max(axis, keepdims=True))
  return e / e.sum(axis, keepdims=True)


def attention(xq, xkv, p, mask=None):
  q = np.einsum("bld,dhk->blhk", xq, p["query"]["kernel"]) + p["query"]["bias"]
  k = np.einsum("bld,dhk->blhk", xkv, p["key"]["kernel"]) + p["key"]["bias"]
  v = np.einsum("bld,dhk->blhk", xkv, p["value"]["kernel"]) + p["value"]["bias"]
  logits = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
  if mask is not None:
    logits = np.where(mask[:, None, None, :], logits, -1e30)
  y = np.einsum("bhqs,bshk->bqhk", softmax(logits), v)
  return np.einsum("bqhk,hkd->bqd", y, p["out"]["kernel"]) + p["out"]["bias"]


def mlp(x, p):
  h = gelu_tanh(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
  return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]


def block(x, p, mask=None):
  y = layer_norm(x, p["LayerNorm_0"])
  x = x + attention(y, y, p["MultiHeadDotProductAttention_0"], mask)
  return x + mlp(layer_norm(x, p["LayerNorm_1"]), p["MlpBlock_0"])


def encoder(x, p, depth, mask=None, final_norm=True):
  for i in range(depth):
    x = block(x, p[f"encoderblock_{i}"], mask)
  return layer_norm(x, p["encoder_norm"]) if final_norm else x


def map_head(x, p):
  probe = np.broadcast_to(p["probe"], (x.shape[0], 1, x.shape[-1]))
  y = attention(probe, x, p["MultiHeadDotProductAttention_0"])
  y = y + mlp(layer_norm(y, p["LayerNorm_0"]), p["MlpBlock_0"])
  return y[:, 0]


def vit(images, p, depth, patch, pool="map"):
  """images [B, H, W, 3] -> (pooled-or-head [B, E], encoded tokens [B, N, D])."""
  p = f64(p)
  images = np.asarray(images, np.float64)
  b, hh, ww, c = images.shape
  h, w = hh // patch, ww // patch
  x = images.reshape(b, h, patch, w, patch, c).transpose(0, 1, 3, 2, 4, 5)
  x = np.einsum("bhwpqc,pqcd->bhwd", x, p["embedding"]["kernel"]) + p["embedding"]["bias"]
  x = x.reshape(b, h * w, -1) + p["pos_embedding"]
  if pool == "tok":
    x = np.concatenate([np.broadcast_to(p["cls"], (b, 1, x.shape[-1])), x], axis=1)
  x = encoder(x, p["Transformer"], depth)
  encoded = x[:, 1:] if pool == "tok" else x
  pooled = {"map": lambda: map_head(x, p["MAPHead_0"]), "gap": lambda: x.mean(1),
            "tok": lambda: x[:, 0]}[pool]()
  if "head" in p:
    pooled = pooled @ p["head"]["kernel"] + p["head"]["bias"]
  return pooled, encoded


def perturb(params, seed=0, scale=0.05):
  """Adds noise to every leaf so zero-initialised biases/probes/embeddings are exercised."""
  rng = np.random.default_rng(seed)

  def go(t):
    if isinstance(t, dict):
      return {k: go(v) for k, v in t.items()}
    t = np.asarray(t)
    return (t + scale * rng.standard_normal(t.shape)).astype(t.dtype)
  return go(params)


def random_params(model, *args, seed=0, **kwargs):
  """Random float32 params shaped like `model.init(key, *args)["params"]`, without running init.

  Tracing init under `jax.eval_shape` costs no XLA compile (eager or jitted init of even a tiny
  ViT takes seconds on a busy CPU). Kernels ~ N(0, 1/prod(leading dims)), LayerNorm scales ~ 1.
  """
  import jax  # pylint: disable=import-outside-toplevel
  from flax import traverse_util  # pylint: disable=import-outside-toplevel
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *args, **kwargs))
  shapes = traverse_util.flatten_dict(nn_unbox(shapes)["params"])
  rng = np.random.default_rng(seed)
  out = {}
  for path, s in shapes.items():
    noise = rng.standard_normal(s.shape)
    if path[-1] == "scale":
      value = 1.0 + 0.1 * noise
    elif path[-1] == "kernel" and len(s.shape) >= 2:
      value = noise / np.sqrt(np.prod(s.shape[:-1]))
    else:
      value = 0.1 * noise
    out[path] = value.astype(np.float32)
  return traverse_util.unflatten_dict(out)


def nn_unbox(tree):
  import flax.linen as nn  # pylint: disable=import-outside-toplevel
  return nn.meta.unbox(tree)
