"""vidistill.fs: the same calls on local paths and on a remote file system (TensorFlow's ram://)."""
import os
import subprocess
import sys
import uuid

import pytest

from vidistill import fs


@pytest.fixture(params=["local", "ram"])
def root(request, tmp_path):
  if request.param == "local":
    return str(tmp_path)
  return f"ram://fs-{uuid.uuid4().hex}"


def test_is_remote():
  assert fs.is_remote("gs://bucket/x") and fs.is_remote("ram://x") and fs.is_remote("s3://b")
  assert not fs.is_remote("/tmp/x") and not fs.is_remote("relative/x") and not fs.is_remote("c:x")
  assert fs.abspath("gs://bucket/a") == "gs://bucket/a"
  assert fs.abspath("a") == os.path.join(os.getcwd(), "a")


def test_files_folders_and_moves(root):
  folder = os.path.join(root, "a", "b")
  fs.makedirs(folder)
  fs.makedirs(folder)  # exist_ok
  assert fs.isdir(folder) and not fs.isfile(folder)
  path = os.path.join(folder, "x.txt")
  with fs.open(path, "w", encoding="utf-8") as f:
    f.write("héllo\nworld\n")
  with fs.open(path, "a", encoding="utf-8") as f:
    f.write("more\n")
  with fs.open(path, encoding="utf-8") as f:
    assert [line.rstrip("\n") for line in f] == ["héllo", "world", "more"]
  assert fs.isfile(path) and fs.exists(path) and fs.getsize(path) == len("héllo\nworld\nmore\n".encode())
  with fs.open(path, "rb") as f:
    assert f.read(2) == b"h\xc3"
  # A temp file beside it, then moved onto it: the final name holds the new bytes only.
  temp = path + ".tmp.1"
  with fs.open(temp, "wb") as f:
    f.write(b"new")
  assert sorted(os.path.basename(p) for p in fs.glob(os.path.join(folder, "x.txt*"))) == [
      "x.txt", "x.txt.tmp.1"]
  fs.replace(temp, path)
  assert fs.open(path, "rb").read() == b"new" and not fs.isfile(temp)
  assert fs.listdir(folder) == ["x.txt"]
  # copy_new: only when the destination is absent.
  other = os.path.join(folder, "y")
  with fs.open(other + ".tmp", "wb") as f:
    f.write(b"first")
  assert fs.copy_new(other + ".tmp", other) and not fs.copy_new(path, other)
  assert fs.open(other, "rb").read() == b"first"
  fs.remove(other + ".tmp")
  fs.remove(other)
  with pytest.raises(FileNotFoundError):
    fs.open(os.path.join(folder, "missing"))
  with pytest.raises(FileNotFoundError):
    fs.remove(os.path.join(folder, "missing"))
  with pytest.raises(FileNotFoundError):
    fs.getsize(os.path.join(folder, "missing"))
  # A folder moves with its files; rmtree removes a tree.
  fs.makedirs(os.path.join(root, "c", "7", "params"))
  with fs.open(os.path.join(root, "c", "7", "params", "p"), "wb") as f:
    f.write(b"p")
  fs.replace(os.path.join(root, "c", "7"), os.path.join(root, "c", "7.incomplete"))
  assert fs.open(os.path.join(root, "c", "7.incomplete", "params", "p"), "rb").read() == b"p"
  # (Not isdir(".../7"): ram:// calls any prefix of a name a folder, here of "7.incomplete".)
  assert fs.listdir(os.path.join(root, "c")) == ["7.incomplete"]
  assert not fs.glob(os.path.join(root, "c", "7", "*"))
  fs.rmtree(os.path.join(root, "c"))
  assert not fs.exists(os.path.join(root, "c", "7.incomplete", "params", "p"))


def test_text_read_strips_bom_and_keeps_newlines_for_csv(root):
  fs.makedirs(root)
  path = os.path.join(root, "a.csv")
  with fs.open(path, "wb") as f:
    f.write("\ufeffid,text\n1,\"two\r\nlines\"\n".encode())
  import csv  # pylint: disable=g-import-not-at-top
  with fs.open(path, encoding="utf-8-sig", newline="") as f:
    assert list(csv.reader(f)) == [["id", "text"], ["1", "two\r\nlines"]]


def test_local_paths_do_not_import_tensorflow(tmp_path):
  code = (f"import sys; from vidistill import fs; p = {str(tmp_path / 'f')!r}; "
          "fs.open(p, 'w').write('x'); assert fs.isfile(p); fs.replace(p, p + '2'); "
          "print('tensorflow' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_files_under_lists_every_file_below_skipping_hidden_names(root):
  for rel in ("a.mp4", "sub/b.mp4", "sub/deep/c.txt", ".hidden.mp4", ".cache/d.mp4", "g/.f.mp4"):
    path = os.path.join(root, rel)
    fs.makedirs(os.path.dirname(path))
    with fs.open(path, "wb") as f:
      f.write(b"x")
  fs.makedirs(os.path.join(root, "empty"))  # ram:// lists any prefix match: no "e/" here.
  listed = sorted(os.path.relpath(p, root) if not fs.is_remote(p) else p[len(root) + 1:]
                  for p in fs.files_under(root))
  assert listed == ["a.mp4", "sub/b.mp4", "sub/deep/c.txt"]
  assert fs.files_under(os.path.join(root, "empty")) == []
  if fs.is_remote(root):
    with pytest.raises(FileNotFoundError):
      fs.files_under(os.path.join(root, "missing"))
