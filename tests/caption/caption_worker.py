"""One captioning process for the subprocess tests (kill / restart, several processes, the CLI).

    python caption_worker.py job INPUT OUTPUT VIDEO_ROOT PROCESS_INDEX PROCESS_COUNT DELAY_S [ARG]
    python caption_worker.py cli DELAY_S -- <vidistill caption flags>

`job` calls run_job directly with explicit process numbers; `cli` runs the `vidistill caption`
command with `load_captioner` replaced by the fake (the one seam the real model will fill).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from caption_fakes import FakeCaptioner, like_a_checkpoint, load_config  # pylint: disable=wrong-import-position


def main(argv):
  mode = argv[1]
  if mode == "job":
    from vidistill.caption import job  # pylint: disable=g-import-not-at-top
    input_spec, output, root, index, count, delay = argv[2:8]
    config = load_config(argv[8] if len(argv) > 8 else "tiny")
    job.run_job(config, FakeCaptioner(delay_s=float(delay)), input_spec, output, video_root=root,
                process_index=int(index), process_count=int(count))
  elif mode == "cli":
    from vidistill.caption import captioner  # pylint: disable=g-import-not-at-top
    from vidistill.caption import command  # pylint: disable=g-import-not-at-top
    delay = float(argv[2])

    def load(config, checkpoint):  # the one seam the real model fills, as the real loader does
      del checkpoint
      like_a_checkpoint(config)
      return FakeCaptioner(delay_s=delay)

    captioner.load_captioner = load
    command.run("vidistill caption", argv[argv.index("--") + 1:])
  else:
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
  main(sys.argv)
