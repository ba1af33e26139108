"""The distributed, resumable, exactly-once pseudo-captioning job (docs/captioning.md).

  manifest.py   --input -> ordered, checked entries (manifests, globs of videos, shards)
  units.py      fixed-size units in manifest order, round-robin over processes, units.jsonl
  frames.py     an entry's frames: decoded files (local / allowed remote) or stored shards
  captioner.py  the Captioner protocol the job drives, and `load_captioner` (the model seam)
  job.py        `run_job`: prefetch, batch, caption, commit, one process's share
  commit.py     atomic unit commits and the done records
  progress.py   progress lines and the metrics file
  command.py    `vidistill caption`

What the job writes is read below it, in vidistill/data/: caption_rows.py (caption files: JSONL,
TFRecord, ArrayRecord) and caption_output.py (committed captions: `read_captions`,
`caption_source`, job status), so training and the pipeline read captions without importing the
job.
"""
