#!/usr/bin/env bash
# Runs one vidistill command on every host of a Cloud TPU VM pod slice (docs/scaling.md).
#
#   launch/tpu_pod.sh --name my-pod --zone us-central2-b --accelerator_type v4-32 --create \
#       -- vidistill train --config configs/train/visual_adaptation.py:paper,world=gs://b/world \
#          --workdir gs://b/runs/s1
#
# Steps: (1) with --create, `gcloud compute tpus tpu-vm create`; (2) the code (this checkout, no
# .git) is copied to every worker; (3) `pip install -e .` with jax[tpu] on every worker (skip with
# --skip_install); (4) the command runs on all workers at once (--worker=all). JAX finds the other
# hosts by itself on a TPU pod (vidistill/parallel/multihost.py, mode "auto"), so no coordinator
# flags are needed. The workdir must be shared by the hosts (every host writes its shards of a
# checkpoint into the same directory; a pod's local disks are not shared): a bucket mounted with
# gcsfuse on every worker (--gcsfuse BUCKET: /gcs/BUCKET), or gs:// where the command supports it
# (docs/scaling.md lists which parts do today).
#
# Flags:
#   --name NAME              TPU VM name (required)
#   --zone ZONE              e.g. us-central2-b (required)
#   --project PROJECT        GCP project (default: gcloud's configured one)
#   --accelerator_type TYPE  with --create: e.g. v4-32, v5litepod-16 (default v4-8)
#   --version RUNTIME        with --create: TPU VM software version (default tpu-ubuntu2204-base)
#   --create                 create the TPU VM first
#   --spot                   with --create: a spot (preemptible) VM
#   --code_dir DIR           the checkout to copy (default: this script's repository)
#   --skip_install           do not copy or install the code (it is there already)
#   --gcsfuse BUCKET         mount gs://BUCKET at /gcs/BUCKET on every worker (installs gcsfuse)
#   --allow_local_workdir    accept a --workdir/--output not under gs:// or /gcs/ (one-host slices)
#   --dry_run                print the gcloud commands instead of running them
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

name="" zone="" project="" accel="v4-8" version="tpu-ubuntu2204-base" create=0 spot=0
code_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" install=1 allow_local=0 dry_run=0 bucket=""
while (( $# )); do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --name=*) name="${1#*=}"; shift ;;
    --zone) zone="$2"; shift 2 ;;
    --zone=*) zone="${1#*=}"; shift ;;
    --project) project="$2"; shift 2 ;;
    --project=*) project="${1#*=}"; shift ;;
    --accelerator_type) accel="$2"; shift 2 ;;
    --accelerator_type=*) accel="${1#*=}"; shift ;;
    --version) version="$2"; shift 2 ;;
    --version=*) version="${1#*=}"; shift ;;
    --code_dir) code_dir="$2"; shift 2 ;;
    --code_dir=*) code_dir="${1#*=}"; shift ;;
    --gcsfuse) bucket="$2"; shift 2 ;;
    --gcsfuse=*) bucket="${1#*=}"; shift ;;
    --create) create=1; shift ;;
    --spot) spot=1; shift ;;
    --skip_install) install=0; shift ;;
    --allow_local_workdir) allow_local=1; shift ;;
    --dry_run) dry_run=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) echo "tpu_pod.sh: unknown flag '$1' (the command to run goes after --)" >&2; exit 2 ;;
  esac
done
if [[ -z "$name" || -z "$zone" ]]; then
  echo "tpu_pod.sh: --name and --zone are required" >&2; exit 2
fi
if (( $# == 0 )); then
  echo "tpu_pod.sh: no command: put it after --, e.g. -- vidistill train --config ... --workdir gs://..." >&2
  exit 2
fi

# The output directory of the command (--workdir / --output, either spelling) must be shared.
prev=""
for arg in "$@"; do
  dir=""
  case "$arg" in
    --workdir=*|--output=*) dir="${arg#*=}" ;;
  esac
  if [[ "$prev" == "--workdir" || "$prev" == "--output" ]]; then dir="$arg"; fi
  if [[ -n "$dir" && "$dir" != gs://* && "$dir" != /gcs/* && "$allow_local" == 0 ]]; then
    echo "tpu_pod.sh: output directory '$dir' is not on GCS; the hosts of a pod do not share disks." \
      "Use /gcs/BUCKET/path with --gcsfuse BUCKET (or gs://), or --allow_local_workdir on a" \
      "one-host slice." >&2
    exit 2
  fi
  prev="$arg"
done

gcloud_tpu=(gcloud compute tpus tpu-vm)
where=(--zone="$zone")
[[ -n "$project" ]] && where+=(--project="$project")

run() {
  if (( dry_run )); then printf '%q ' "$@"; echo; else "$@"; fi
}

if (( create )); then
  extra=()
  (( spot )) && extra+=(--spot)
  run "${gcloud_tpu[@]}" create "$name" "${where[@]}" --accelerator-type="$accel" \
    --version="$version" "${extra[@]}"
fi

if (( install )); then
  tarball="$(mktemp -d)/vidistill-code.tgz"
  if (( dry_run )); then
    echo "# would pack $code_dir into $tarball"
  elif git -C "$code_dir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # What git would commit (tracked + untracked, minus .gitignore's): a checkout's .venv or
    # workdirs (gigabytes) stay behind. Missing tracked files (deleted, uncommitted) are skipped.
    git -C "$code_dir" ls-files -z --cached --others --exclude-standard |
      tar -czf "$tarball" -C "$code_dir" --null --ignore-failed-read -T - 2>/dev/null
  else
    tar -czf "$tarball" -C "$code_dir" --exclude=.git --exclude=.venv --exclude='*.egg-info' \
      --exclude=__pycache__ .
  fi
  run "${gcloud_tpu[@]}" scp "$tarball" "$name:vidistill-code.tgz" "${where[@]}" --worker=all
  run "${gcloud_tpu[@]}" ssh "$name" "${where[@]}" --worker=all --command="mkdir -p ~/vidistill \
&& tar -xzf ~/vidistill-code.tgz -C ~/vidistill && python3 -m pip install -q -U 'jax[tpu]' \
&& python3 -m pip install -q -e ~/vidistill"
fi

if [[ -n "$bucket" ]]; then
  # Google's documented gcsfuse install (apt repository), then the mount, on every worker.
  run "${gcloud_tpu[@]}" ssh "$name" "${where[@]}" --worker=all --command="set -e; \
if ! command -v gcsfuse >/dev/null; then \
echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt \
gcsfuse-\$(lsb_release -c -s) main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null; \
curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null; \
sudo apt-get update -q && sudo apt-get install -y -q gcsfuse; fi; \
sudo mkdir -p /gcs/$bucket && sudo chown \$USER /gcs/$bucket; \
mountpoint -q /gcs/$bucket || gcsfuse --implicit-dirs $bucket /gcs/$bucket"
fi

# pip --user puts the `vidistill` entry point in ~/.local/bin, not on a non-login shell's PATH.
remote="cd ~/vidistill && export PATH=\"\$HOME/.local/bin:\$PATH\" TF_CPP_MIN_LOG_LEVEL=3 && $(printf '%q ' "$@")"
run "${gcloud_tpu[@]}" ssh "$name" "${where[@]}" --worker=all --command="$remote"
