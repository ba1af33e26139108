"""Videos read from and written to a remote file system (TensorFlow's ram:// standing in for gs://):
opened through the gfile file object, decoded exactly as the local file."""
import os
import uuid

import numpy as np
import pytest

from vidistill import fs
from vidistill.data import video_io
from vidistill.data import video_write


def _clip(frames=12, size=32):
  t = np.arange(frames)[:, None, None, None]
  y = np.arange(size)[None, :, None, None]
  return np.broadcast_to((t * 20 + y * 4 + np.arange(3) * 60) % 256,
                         (frames, size, size, 3)).astype(np.uint8)


def test_read_and_write_ram_videos_like_local(tmp_path):
  remote = f"ram://videos-{uuid.uuid4().hex}"
  local = video_write.write_video(str(tmp_path / "a.mp4"), _clip(), fps=8, bit_exact=True)
  fs.makedirs(remote)
  with open(local, "rb") as f, fs.open(f"{remote}/a.mp4", "wb") as g:
    g.write(f.read())
  expected = video_io.read_video(local, 4, resolution=16, window=(0.25, 1.25))
  got = video_io.read_video(f"{remote}/a.mp4", 4, resolution=16, window=(0.25, 1.25))
  assert got.shape == (4, 16, 16, 3) and np.array_equal(got, expected)
  assert video_io.video_info(f"{remote}/a.mp4") == video_io.video_info(local)
  # Written straight to ram://: the same bytes as the local file, no temp object left (bit_exact:
  # x264's assembly can make two encodes of the same frames differ).
  written = video_write.write_video(f"{remote}/out/b.mp4", _clip(), fps=8, bit_exact=True)
  assert fs.listdir(f"{remote}/out") == ["b.mp4"]
  with fs.open(written, "rb") as f, open(local, "rb") as g:
    assert f.read() == g.read()
  with pytest.raises(video_io.VideoNotFoundError):
    video_io.read_video(f"{remote}/missing.mp4", 4)
  with fs.open(f"{remote}/empty.mp4", "wb") as f:
    f.write(b"")
  with pytest.raises(video_io.EmptyVideoError):
    video_io.read_video(f"{remote}/empty.mp4", 4)
  assert not os.path.exists(remote)
