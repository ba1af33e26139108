"""The distributed, resumable, exactly-once pseudo-captioning job (docs/captioning.md).

  manifest.py   --input -> ordered, checked entries (manifests, globs of videos, shards)
  units.py      fixed-size units in manifest order, round-robin over processes, units.jsonl
  frames.py     an entry's frames: decoded files (local / allowed remote) or stored shards
  captioner.py  the Captioner protocol the job drives, and `load_captioner` (the model seam)
  job.py        `run_job`: prefetch, batch, caption, commit, one process's share
  commit.py     atomic unit commits and the done records
  writers.py    caption files: JSONL, TFRecord, ArrayRecord
  progress.py   progress lines and the metrics file
  results.py    reading committed captions (`read_captions`, `caption_source`), job status
  command.py    `vidistill caption`
"""
