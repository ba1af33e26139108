"""File I/O on local paths and on remote file systems (gs://, s3://, ram:// ...), from one place.

A path with a scheme (`<scheme>://...`) goes through `tf.io.gfile`, which is what the example
shards and orbax (through etils epath) already use; TensorFlow is imported only when such a path
is first used. Every other path goes to the plain `os` / `open` / `glob` / `shutil` functions, so
local behaviour and speed are exactly those of the standard library.

Differences on remote paths that callers may rely on:
  * `open` for reading a missing object raises FileNotFoundError (gfile raises its NotFoundError
    only on the first read); text mode decodes with `encoding` (utf-8-sig strips a BOM).
  * `replace` of a file is copy-then-delete on object stores (GCS has no rename): the destination
    object appears whole or not at all, but the source lingers until the delete. Writing under a
    temp name and then `replace`-ing it into place therefore still never shows a partial file.
    A directory is moved file by file (not atomic).
  * `fsync_file` / `fsync_dir` are no-ops: an object is durable once its file is closed.
  * `glob` has no `**` recursion (use `files_under` to list a folder recursively), and its `*`
    also matches names that start with ".".

Why not etils.epath (which orbax uses): it has no fsync, which the captioning job's exactly-once
commits need on local disks, and on local paths it measured 2.4x slower than this module for
`isfile` + read and 3x for `glob` (docs/experiments.md, 2026-12-06).
"""
from __future__ import annotations

import builtins
import errno
import glob as glob_lib
import io
import os
import re
import shutil
from typing import IO, Any

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def scheme(path: str | os.PathLike | None) -> str | None:
  """"gs" for "gs://b/x.mp4" (lower-cased); None for a local path."""
  match = _SCHEME.match(os.fspath(path or ""))
  return match.group(1).lower() if match else None


def is_remote(path: str | os.PathLike) -> bool:
  """True for `gs://bucket/x`, `ram://x` ... (anything `tf.io.gfile` resolves by scheme)."""
  return scheme(path) is not None


def _gfile():
  from vidistill import tf_quiet  # pylint: disable=g-import-not-at-top
  return tf_quiet.import_tensorflow().io.gfile


def _stat_file(path: str) -> Any:
  """gfile's stat of the file `path`, or None if there is none (or it is a folder).

  One request on GCS. Not gfile.exists: ram:// (the tests' stand-in) calls any prefix of an
  existing name a folder that exists, so `units.jsonl` "exists" beside `units.jsonl.tmp.1`.
  """
  gfile = _gfile()
  try:
    stat = gfile.stat(path)
  except _gfile_errors().NotFoundError:
    return None
  return None if stat.is_directory else stat


def _not_found(path: str) -> FileNotFoundError:
  return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


class _RawGFile(io.RawIOBase):
  """A gfile.GFile opened "rb" as a raw stream, so io.BufferedReader / TextIOWrapper can wrap it."""

  def __init__(self, f: Any):
    super().__init__()
    self._f = f

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def readinto(self, buffer) -> int:
    data = self._f.read(len(buffer))
    buffer[:len(data)] = data
    return len(data)

  def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
    self._f.seek(offset, whence)
    return self._f.tell()  # GFile.seek returns None.

  def tell(self) -> int:
    return self._f.tell()

  def close(self) -> None:
    if not self.closed:
      self._f.close()
    super().close()


def open(path: str | os.PathLike, mode: str = "r", *, encoding: str | None = None,  # pylint: disable=redefined-builtin
         newline: str | None = None) -> IO[Any]:
  """Like the builtin `open` (modes r, w, a, with or without b)."""
  path = os.fspath(path)
  if not is_remote(path):
    return builtins.open(path, mode, encoding=encoding, newline=newline)
  gfile = _gfile()
  if "r" in mode:
    if _stat_file(path) is None:
      raise _not_found(path)
    if "b" in mode:
      return gfile.GFile(path, "rb")
    return io.TextIOWrapper(io.BufferedReader(_RawGFile(gfile.GFile(path, "rb"))),
                            encoding=encoding or "utf-8", newline=newline)
  return gfile.GFile(path, mode)  # Writes str as utf-8 in text mode, bytes in "b" mode.


def exists(path: str) -> bool:
  return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
  if not is_remote(path):
    return os.path.isfile(path)
  return _stat_file(path) is not None


def getsize(path: str) -> int:
  if not is_remote(path):
    return os.path.getsize(path)
  stat = _stat_file(path)
  if stat is None:
    raise _not_found(path)
  return stat.length


def makedirs(path: str, exist_ok: bool = True) -> None:
  if not is_remote(path):
    os.makedirs(path, exist_ok=exist_ok)
  elif not exist_ok and _gfile().exists(path):
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
  else:
    _gfile().makedirs(path)


def listdir(path: str) -> list[str]:
  """Entry names (no trailing "/" for remote folders)."""
  if not is_remote(path):
    return os.listdir(path)
  gfile = _gfile()
  if not gfile.isdir(path):
    raise _not_found(path)
  return [name.rstrip("/") for name in gfile.listdir(path)]


def glob(pattern: str) -> list[str]:
  """Matching paths (unsorted, like glob.glob); no `**` recursion."""
  return _gfile().glob(pattern) if is_remote(pattern) else glob_lib.glob(pattern)


def files_under(folder: str) -> list[str]:
  """Every file below `folder`, at any depth (unsorted), skipping names that start with "."
  (hidden files and everything in hidden folders), as `glob.glob(folder/**/*, recursive=True)`
  does; folders themselves are not listed.

  Locally exactly that glob, keeping what os.path.isfile accepts. Remote: tf.io.gfile.walk (one
  listing per folder; gfile also stats each entry to tell files from folders).
  """
  if not is_remote(folder):
    pattern = os.path.join(folder, "**", "*")
    return [p for p in glob_lib.glob(pattern, recursive=True) if os.path.isfile(p)]
  gfile = _gfile()
  if not gfile.isdir(folder):
    raise _not_found(folder)
  files = []
  for parent, subdirs, names in gfile.walk(folder):
    subdirs[:] = [d for d in subdirs if not d.rstrip("/").startswith(".")]  # walk is top-down.
    files += [os.path.join(parent, name) for name in names if not name.startswith(".")]
  return files


def abspath(path: str) -> str:
  """os.path.abspath for local paths; a remote path is already absolute (os.path.abspath would
  turn `gs://b` into `<cwd>/gs:/b`): only a trailing "/" is dropped, as abspath does."""
  return path.rstrip("/") if is_remote(path) else os.path.abspath(path)


def replace(src: str, dst: str) -> None:
  """Moves `src` onto `dst`, replacing a file there (os.replace locally).

  Remote: a file is copied then deleted (GCS objects appear whole, so a reader of `dst` sees the
  old object or the new one); a directory is moved file by file, `dst` must not exist.
  """
  if not is_remote(src):
    os.replace(src, dst)
    return
  gfile = _gfile()
  if not gfile.isdir(src):
    gfile.rename(src, dst, overwrite=True)
    return
  # gfile.rename of a folder is not portable (ram:// moves only the folder marker), so copy each
  # file, delete it, then what is left of the source tree.
  files = [os.path.join(folder, name) for folder, _, names in gfile.walk(src) for name in names]
  for path in files:
    target = dst + path[len(src):]
    gfile.makedirs(os.path.dirname(target))
    gfile.copy(path, target, overwrite=True)
  for path in files:
    gfile.remove(path)
  try:
    gfile.rmtree(src)
  except _gfile_errors().NotFoundError:
    pass  # Nothing left (object stores have no folders once their files are gone).


def copy_new(src: str, dst: str) -> bool:
  """Copies `src` to `dst` unless `dst` exists (then False).

  Locally a hard link: atomic among racing processes (the first one wins). Remote: a check and
  then a copy, so two racers can both succeed; callers must only use it where both would write
  the same bytes.
  """
  if not is_remote(dst):
    try:
      os.link(src, dst)
    except FileExistsError:
      return False
    return True
  if _stat_file(dst) is not None:
    return False
  # Read and write rather than gfile.copy: on ram:// a copy onto a prefix of an existing name
  # (`units.jsonl` beside `units.jsonl.tmp.1`) silently writes nothing. Meant for small files.
  gfile = _gfile()
  with gfile.GFile(src, "rb") as f:
    data = f.read()
  with gfile.GFile(dst, "wb") as f:
    f.write(data)
  return True


def _gfile_errors():
  from vidistill import tf_quiet  # pylint: disable=g-import-not-at-top
  return tf_quiet.import_tensorflow().errors


def remove(path: str) -> None:
  if not is_remote(path):
    os.remove(path)
    return
  if _stat_file(path) is None:
    raise _not_found(path)
  _gfile().remove(path)


def rmtree(path: str) -> None:
  if is_remote(path):
    _gfile().rmtree(path)
  else:
    shutil.rmtree(path)


def fsync_file(f: IO[Any]) -> None:
  """Flushes an open file to the disk (os.fsync); a remote file is durable when closed."""
  f.flush()
  if hasattr(f, "fileno"):
    try:
      fileno = f.fileno()
    except (OSError, io.UnsupportedOperation):
      return
    os.fsync(fileno)


def fsync_dir(path: str) -> None:
  """Flushes a local folder's entries (after a rename into it); nothing to do remotely."""
  if is_remote(path):
    return
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)
