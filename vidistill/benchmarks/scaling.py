"""Captioning throughput with 1, 2, 4 processes, and the projected cost of the paper's job.

Weak scaling: P plain subprocesses (process_index / process_count given explicitly, as
tests/caption/test_job_processes.py starts them) each caption the same number of clips of one
manifest; throughput(P) = all clips / the slowest process's job time, and
efficiency(P) = throughput(P) / (P x throughput(1)). Each process warms its captioner (compiles)
before its job starts, so compile time is not counted.

Projection (an estimate, not a measurement): FLOPs per clip of the paper-size captioner (ViT-G/14
+ UL2-3B, stage_configs "paper" variant: 16 frames 224 px, whole token grid, 64-token captions)
counted from the model's jaxpr on abstract shapes (flops.py, nothing allocated), then
    TPU-v5e hours = clips x prompts x FLOPs per (clip, prompt) / (197e12 FLOP/s x MFU) / 3600.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from vidistill.benchmarks import report

SIZES = {
    "short": dict(processes=(1, 2), clips_per_process=4, captioner="fixed", seconds_per_video=0.05,
                  frames=4, res=32, batch=2, unit=2),
    "full": dict(processes=(1, 2, 4), clips_per_process=16, captioner="vlm", seconds_per_video=0.0,
                 frames=4, res=32, batch=4, unit=4),
}
PAPER_CLIPS = 17_000_000  # VideoCC + InternVid clips captioned in the paper (Sec. 4).
V5E_BF16_PEAK = 197e12  # FLOP/s per TPU v5e chip (Google Cloud datasheet).
ASSUMED_MFU = 0.3  # Of the whole job (prefill is matmul-bound, decode memory-bound): a guess.


def _worker_env() -> dict[str, str]:
  return dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS="")


def _make_captioner(s: dict[str, Any]):
  from vidistill.benchmarks import captioners  # pylint: disable=g-import-not-at-top
  if s["captioner"] == "fixed":
    return captioners.FixedCostCaptioner(s["seconds_per_video"])
  return captioners.TinyVLMCaptioner("short", num_frames=s["frames"], resolution=s["res"])


def worker(manifest: str, out: str, index: int, count: int, s: dict[str, Any]) -> dict[str, Any]:
  """One process: warm the captioner, run its share of the job, return its summary."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from vidistill.benchmarks import input_pipeline  # pylint: disable=g-import-not-at-top
  from vidistill.caption import job  # pylint: disable=g-import-not-at-top
  captioner = _make_captioner(s)
  captioner.caption(np.zeros((s["batch"], s["frames"], s["res"], s["res"], 3), np.uint8),
                    ["caption en:"] * s["batch"], 0)
  config = input_pipeline.caption_config(dict(s, workers=2, max_len=16))
  summary = job.run_job(config, captioner, manifest, out, video_root=os.path.dirname(manifest),
                        process_index=index, process_count=count)
  return summary.as_dict()


def _run_processes(manifest: str, out: str, count: int, s: dict[str, Any]) -> list[dict]:
  procs = [subprocess.Popen([sys.executable, "-m", "vidistill.benchmarks.scaling", manifest, out,
                             str(i), str(count), json.dumps(s)], env=_worker_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(count)]
  summaries = []
  for p in procs:
    stdout, stderr = p.communicate(timeout=1800)
    if p.returncode:
      raise RuntimeError(f"scaling worker failed ({p.returncode}):\n{stderr[-3000:]}")
    summaries.append(json.loads(stdout.strip().splitlines()[-1]))
  return summaries


def measure_scaling(s: dict[str, Any]) -> dict[int, float]:
  """{processes: clips/s of the whole job}."""
  from vidistill.benchmarks import input_pipeline  # pylint: disable=g-import-not-at-top
  rates = {}
  with tempfile.TemporaryDirectory() as tmp:
    total = max(s["processes"]) * s["clips_per_process"]
    paths = input_pipeline.write_clips(tmp, total, 16, 64)
    for count in s["processes"]:
      manifest = os.path.join(tmp, f"manifest_{count}.jsonl")
      with open(manifest, "w", encoding="utf-8") as f:
        for path in paths[:count * s["clips_per_process"]]:
          name = os.path.basename(path)
          f.write(json.dumps({"id": name[:-4], "path": name}) + "\n")
      summaries = _run_processes(manifest, os.path.join(tmp, f"out_{count}"), count, s)
      done = sum(x["videos_done"] for x in summaries)
      if done != count * s["clips_per_process"]:
        raise RuntimeError(f"{count} processes captioned {done} clips: {summaries}")
      rates[count] = done / max(x["elapsed_s"] for x in summaries)
  return rates


def paper_flops_per_clip(max_len: int = 64, prompt_len: int = 32) -> dict[str, float]:
  """Matmul FLOPs of one (clip, prompt) for the paper-size VLM: encoder + cross K/V + decode."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vidistill.benchmarks import flops  # pylint: disable=g-import-not-at-top
  from vidistill.models import build, vlm  # pylint: disable=g-import-not-at-top
  from vidistill.parallel import partitioning  # pylint: disable=g-import-not-at-top
  from vidistill.train import stage_configs  # pylint: disable=g-import-not-at-top
  model = build.build(stage_configs.vlm_model("paper"), vocab_size=32_128, dtype="bfloat16")
  module = model.module
  sds = jax.ShapeDtypeStruct
  batch = {"video": sds((1, 16, 224, 224, 3), jnp.uint8),
           "prompt_tokens": sds((1, prompt_len), jnp.int32),
           "target_tokens": sds((1, max_len), jnp.int32)}
  params = partitioning.unbox(jax.eval_shape(model.init, jax.random.key(0), batch))["params"]
  apply = lambda method: (lambda p, *a: module.apply({"params": p}, *a, method=method))
  encode = apply(vlm.VideoLanguageModule.encode)
  encode_flops = flops.count(encode, params, batch["video"], batch["prompt_tokens"])
  encoded, mask, _ = jax.eval_shape(encode, params, batch["video"], batch["prompt_tokens"])
  init_cache = lambda p, e, m: module.apply({"params": p}, e, m, max_len,
                                            method=vlm.VideoLanguageModule.init_cache)
  cache_flops = flops.count(init_cache, params, encoded, mask)
  cache, static = jax.eval_shape(init_cache, params, encoded, mask)
  step_flops = flops.count(apply(vlm.VideoLanguageModule.decode_step), params,
                           sds((1,), jnp.int32), cache, static, sds((), jnp.int32))
  return {"encode": encode_flops, "cross_kv": cache_flops, "decode_step": step_flops,
          "decode": step_flops * max_len, "encoder_tokens": float(encoded.shape[1]),
          "params": float(sum(x.size for x in jax.tree.leaves(params))),
          "total": encode_flops + cache_flops + step_flops * max_len}


def run(full: bool = False) -> report.Result:
  s = SIZES["full" if full else "short"]
  rates = measure_scaling(s)
  figures = []
  for count in s["processes"][1:]:
    figures.append(report.Figure(
        "scaling", f"caption job, {count} processes (weak scaling)", rates[count],
        f"{count} x 1 process", count * rates[1], unit="clips/s",
        note=f"{s['clips_per_process']} clips/process, {s['captioner']} captioner, "
             f"{os.cpu_count()} cores"))
  details: dict[str, Any] = {"sizes": s, "clips_per_s": rates}
  start = time.perf_counter()
  f = paper_flops_per_clip()
  prompts = 2  # configs/caption/pseudo_caption.py: a short caption and a detailed one.
  hours = PAPER_CLIPS * prompts * f["total"] / (V5E_BF16_PEAK * ASSUMED_MFU) / 3600
  details["projection"] = {
      "flops_per_clip_prompt": f, "clips": PAPER_CLIPS, "prompts": prompts,
      "v5e_peak_flops": V5E_BF16_PEAK, "assumed_mfu": ASSUMED_MFU, "v5e_hours": hours,
      "v5e_hours_at_mfu": {m: hours * ASSUMED_MFU / m for m in (0.1, 0.2, 0.4, 0.5)},
      "formula": "clips x prompts x FLOPs/(clip,prompt) / (197e12 x MFU) / 3600",
      "count_seconds": time.perf_counter() - start}
  figures.append(report.Figure(
      "scaling", "projected TPU-v5e hours, 17M clips x 2 prompts (paper size)", hours,
      "at MFU 1.0", hours * ASSUMED_MFU, unit="h",
      note=f"estimate: {f['total'] / 1e12:.1f} TFLOP/(clip,prompt), assumed MFU {ASSUMED_MFU}"))
  return report.Result("scaling", figures, details)


if __name__ == "__main__":
  manifest_, out_, index_, count_, sizes_ = sys.argv[1:6]
  print(json.dumps(worker(manifest_, out_, int(index_), int(count_), json.loads(sizes_))))
