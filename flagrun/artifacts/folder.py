"""The artifact store in a folder: a local path, an NFS or SMB mount, ``file:///path``."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from flagrun.artifacts._base import (
    DOWNLOAD_ATTEMPTS,
    KEEP_OLD_SECONDS,
    MARKER,
    RETRY_PAUSE_SECONDS,
    STALE_TEMP_SECONDS,
    ArtifactStore,
    Manifest,
    _check_prefix,
    _Entry,
    _reason,
    _stage_and_move,
    check_key,
    plan_upload,
)
from flagrun.errors import StoreError

# ---------------------------------------------------------------- folder store


class FolderStore(ArtifactStore):
    """An artifact store in a folder every worker mounts (NFS or any shared path).

    A re-upload renames the earlier tree aside as ``.<name>.old-<time>-<id>`` and
    leaves it there for ``keep_old_seconds``: a download holds the tree it started
    on open (directory file descriptors), so it finishes on that tree even when a
    re-upload swaps a new one in meanwhile. Later uploads into the same folder sweep
    the old trees that are past their time, and temp trees a crash left behind.
    """

    def __init__(self, url: str, root: Path, keep_old_seconds: float = KEEP_OLD_SECONDS) -> None:
        self.url = url
        self.root = Path(os.path.abspath(os.path.expanduser(root)))
        self.keep_old_seconds = keep_old_seconds
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the artifact store folder {self.root}: {_reason(exc)}",
                hint="give a folder this user can create and write, e.g. a mounted share",
            ) from None

    def check(self) -> None:
        probe = self.root / f".flagrun-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise self._unwritable(exc) from None

    def upload(self, local_dir: Path, key: str) -> None:
        key = check_key(key)
        entries, skipped = plan_upload(local_dir)
        target = self.root / key
        tag = f"{int(time.time())}-{uuid.uuid4().hex[:10]}"
        tmp = target.parent / f".{target.name}.tmp-{tag}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            manifest = _copy_entries(Path(os.path.realpath(local_dir)), tmp, entries, tag)
            manifest.skipped = skipped
            (tmp / MARKER).write_text(manifest.to_json(), encoding="utf-8")
            _swap_in(tmp, target)
            _sweep(target.parent, self.keep_old_seconds)
        except OSError as exc:
            if _is_under(exc.filename, local_dir):
                raise StoreError(f"cannot read {exc.filename}: {_reason(exc)}") from None
            raise self._unwritable(exc) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def exists(self, key: str) -> bool:
        return (self.root / check_key(key) / MARKER).is_file()

    def keys(self, prefix: str = "") -> list[str]:
        prefix = _check_prefix(prefix)
        start = self.root / prefix if prefix else self.root
        found: list[str] = []
        self._collect_keys(start, prefix, found)
        return sorted(found)

    def _collect_keys(self, folder: Path, key: str, found: list[str]) -> None:
        if key and (folder / MARKER).is_file():
            found.append(key)
            return  # an upload's own subfolders are its files, not keys
        try:
            with os.scandir(folder) as scan:
                children = [c for c in scan if c.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return
        for child in children:
            if not child.name.startswith("."):
                child_key = f"{key}/{child.name}" if key else child.name
                self._collect_keys(Path(child.path), child_key, found)

    def download(self, key: str, dest: Path) -> Path:
        key = check_key(key)
        dest = Path(os.path.abspath(dest))
        failure = "it kept changing while it was downloaded"
        missing = 0
        for attempt in range(DOWNLOAD_ATTEMPTS):
            time.sleep(RETRY_PAUSE_SECONDS * attempt)
            try:
                top = os.open(self.root / key, os.O_RDONLY | os.O_DIRECTORY)
            except (FileNotFoundError, NotADirectoryError):
                missing += 1  # twice in a row: not merely caught between two renames
                if missing == 2:
                    break
                continue
            missing = 0
            try:
                if not _is_file_at(MARKER, top):
                    break
                done = _stage_and_move(dest, partial(_copy_tree_at, top))
                if done is not None:
                    return done
            except OSError as exc:  # the tree was swept away under us: try again
                failure = _reason(exc)
            finally:
                os.close(top)
        if missing or failure.startswith("it kept"):
            raise StoreError(f"no complete upload {key!r} in the artifact store {self.url}")
        raise StoreError(f"cannot download {key!r} from {self.url}: {failure}")

    def _unwritable(self, exc: OSError) -> StoreError:
        return StoreError(
            f"cannot write to the artifact store {self.root}: {_reason(exc)}",
            hint="check that the folder is mounted read-write and this user may write to it",
        )


def _copy_entries(source: Path, dest: Path, entries: list[_Entry], upload_id: str) -> Manifest:
    manifest = Manifest(upload_id=upload_id)
    for entry in entries:
        target = dest / entry.relpath
        if entry.kind == "dir":
            target.mkdir()
            manifest.dirs.append(entry.relpath)
        elif entry.kind == "link":
            os.symlink(entry.link_target, target)
            manifest.links[entry.relpath] = entry.link_target
        else:
            shutil.copy2(source / entry.relpath, target)
            manifest.files[entry.relpath] = target.stat().st_size
    return manifest


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, first moving an earlier ``target`` aside (kept for readers).

    Two workers uploading the same key at once both succeed; the last rename wins.
    When the rename fails for another reason the earlier upload is put back.
    """
    for _ in range(20):
        old = target.parent / f".{target.name}.old-{int(time.time())}-{uuid.uuid4().hex[:10]}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(target, old)
        try:
            os.rename(tmp, target)
            return
        except OSError:
            if target.exists():
                continue  # another upload landed between our two renames: go again
            with contextlib.suppress(OSError):
                os.rename(old, target)
            raise
    raise StoreError(f"could not put the upload in place at {target}: it keeps being replaced")


def _sweep(folder: Path, keep_old_seconds: float) -> None:
    """Remove the old trees past ``keep_old_seconds`` and the temp trees a crash left."""
    now = time.time()
    for child in folder.iterdir():
        name = child.name
        kind, _, rest = name.rpartition(".")[2].partition("-")
        if not name.startswith(".") or kind not in ("old", "tmp"):
            continue
        try:
            made = int(rest.split("-", 1)[0])
        except ValueError:
            continue
        limit = keep_old_seconds if kind == "old" else STALE_TEMP_SECONDS
        if now - made >= limit:
            shutil.rmtree(child, ignore_errors=True)


def _is_file_at(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _copy_tree_at(top: int, dest: Path) -> bool:
    """Copy the folder open as ``top`` into ``dest`` (existing), all by directory descriptors."""

    def fail(exc: OSError) -> None:
        raise exc

    for rel_dir, dirnames, filenames, dir_fd in os.fwalk(".", dir_fd=top, onerror=fail):
        into = dest / rel_dir
        for name in [*dirnames, *filenames]:
            if rel_dir == "." and name == MARKER:
                continue
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(name, dir_fd=dir_fd), into / name)
            elif stat.S_ISDIR(info.st_mode):
                (into / name).mkdir()
            elif stat.S_ISREG(info.st_mode):
                _copy_file_at(name, dir_fd, into / name, info)
    return True


def _copy_file_at(name: str, dir_fd: int, target: Path, info: os.stat_result) -> None:
    source = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    with os.fdopen(source, "rb") as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
    os.chmod(target, stat.S_IMODE(info.st_mode))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))


def _is_under(filename: Any, folder: Path) -> bool:
    if not isinstance(filename, str):
        return False
    folder_text = os.path.realpath(folder)
    return os.path.realpath(filename).startswith(folder_text + os.sep)
