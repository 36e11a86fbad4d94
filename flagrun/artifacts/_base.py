"""What every artifact store shares: the manifest, the interface, keys, what an upload copies."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flagrun.errors import StoreError, UsageError

MARKER = ".flagrun-complete"
MANIFEST_FORMAT = 1
DOWNLOAD_ATTEMPTS = 8
KEEP_OLD_SECONDS = 600.0  # how long a replaced tree stays for the readers still on it
STALE_TEMP_SECONDS = 24 * 3600.0  # a temp tree this old is a crashed upload's
RETRY_PAUSE_SECONDS = 0.05  # times the attempt number: lets a racing re-upload finish
_ACCEPTED = "a folder path (/abs/path or relative/path), file:///abs/path, or s3://bucket/prefix"


@dataclass
class Manifest:
    """What one upload holds; stored as the marker's JSON."""

    upload_id: str
    files: dict[str, int] = field(default_factory=dict)  # relative path -> size in bytes
    dirs: list[str] = field(default_factory=list)  # every folder, empty ones included
    links: dict[str, str] = field(default_factory=dict)  # relative path -> relative target
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> why
    mtimes: dict[str, float] = field(default_factory=dict)
    root: str = ""  # where the files lie under the key ("": directly, as before versions)

    def to_json(self) -> str:
        data = {"format": MANIFEST_FORMAT, "uploaded_at": time.time(), **self.__dict__}
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        data = json.loads(text)
        return cls(
            upload_id=data["upload_id"],
            files={k: int(v) for k, v in data.get("files", {}).items()},
            dirs=list(data.get("dirs", [])),
            links=dict(data.get("links", {})),
            skipped=dict(data.get("skipped", {})),
            mtimes={k: float(v) for k, v in data.get("mtimes", {}).items()},
            root=_version_root(data.get("root", "")),
        )


def _version_root(root: object) -> str:
    """A manifest's ``root``: one hidden name (``.v-...``), or "" (a KeyError otherwise, so
    that a marker naming files elsewhere reads as no marker at all)."""
    if root == "" or (
        isinstance(root, str) and root.startswith(".v-") and "/" not in root and ".." not in root
    ):
        return str(root)
    raise KeyError("root")


class ArtifactStore:
    """Where a study's trial folders are shared. Subclasses implement the four verbs."""

    url: str  # as given (never holding a secret: URLs with credentials are refused)

    def upload(self, local_dir: Path, key: str) -> None:
        """Store ``local_dir`` under ``key``, replacing an earlier upload of that key."""
        raise NotImplementedError

    def download(self, key: str, dest: Path) -> Path:
        """Copy the upload under ``key`` into the folder ``dest`` and return ``dest``.

        Files with the same names already in ``dest`` are replaced; others stay.
        """
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        """True when a complete upload exists under ``key``."""
        raise NotImplementedError

    def keys(self, prefix: str = "") -> list[str]:
        """Every complete upload at or under the key path ``prefix``, sorted."""
        raise NotImplementedError

    def check(self) -> None:
        """Fail now with a StoreError when the store cannot be written (before a long job)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def check_key(key: str) -> str:
    """``key`` as slash-separated plain names; hidden names and ``..`` are refused."""
    parts = [part for part in str(key).replace("\\", "/").split("/") if part]
    if not parts or any(part.startswith(".") for part in parts):
        raise UsageError(
            f"artifact key {key!r} must be names separated by '/', none starting with '.'",
            hint="e.g. mystudy/trials/3",
        )
    return "/".join(parts)


def _check_prefix(prefix: str) -> str:
    return check_key(prefix) if prefix.strip("/") else ""


# ---------------------------------------------------------------- what to copy


@dataclass
class _Entry:
    relpath: str  # posix, relative to the run folder
    kind: str  # "file" | "dir" | "link"
    link_target: str = ""


def plan_upload(local_dir: Path) -> tuple[list[_Entry], dict[str, str]]:
    """The entries of ``local_dir`` to upload (parents before children) and what is skipped."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise StoreError(f"cannot upload {local_dir}: not a folder")
    root = os.path.realpath(local_dir)
    try:
        return _plan(root)
    except OSError as exc:
        raise StoreError(f"cannot read {exc.filename or local_dir}: {_reason(exc)}") from None


def _plan(root: str) -> tuple[list[_Entry], dict[str, str]]:
    entries: list[_Entry] = []
    skipped: dict[str, str] = {}
    for path, rel in _walk(Path(root), ""):
        if rel == MARKER or rel.startswith(MARKER + "."):
            skipped[rel] = "reserved name"
        elif path.is_symlink():
            target = _inside_link_target(path, root)
            if target is None:
                skipped[rel] = f"symlink to {os.readlink(path)} outside the run folder"
            else:
                entries.append(_Entry(rel, "link", target))
        elif path.is_dir():
            entries.append(_Entry(rel, "dir"))
        elif path.is_file():
            entries.append(_Entry(rel, "file"))
        else:
            skipped[rel] = "not a regular file"
    return entries, skipped


def _walk(folder: Path, rel: str) -> Iterator[tuple[Path, str]]:
    """Every path under ``folder``, parents first, never following symlinks."""
    with os.scandir(folder) as scan:
        children = sorted(scan, key=lambda entry: entry.name)
    for child in children:
        child_rel = f"{rel}/{child.name}" if rel else child.name
        yield Path(child.path), child_rel
        if child.is_dir(follow_symlinks=False):
            yield from _walk(Path(child.path), child_rel)


def _inside_link_target(link: Path, root: str) -> str | None:
    """The relative target to store for ``link``, or None when it leads out of ``root``."""
    resolved = os.path.realpath(link)
    if resolved != root and not resolved.startswith(root + os.sep):
        return None
    text = os.readlink(link)
    if not os.path.isabs(text):
        return text
    return os.path.relpath(resolved, os.path.realpath(link.parent))


def _stage_and_move(dest: Path, fill: Callable[[Path], bool]) -> Path | None:
    """``fill`` a hidden folder beside ``dest``; when it returns True, move that into ``dest``.

    ``dest`` is absolute, so an error naming a path under its parent is ours to
    report; any other error (the source side) goes to the caller.
    """
    try:
        with _staging(dest) as staging:
            return _move_into(staging, dest) if fill(staging) else None
    except OSError as exc:
        name = exc.filename if isinstance(exc.filename, str) else ""
        if name and not name.startswith(str(dest.parent)):
            raise
        raise StoreError(f"cannot write the download to {dest}: {_reason(exc)}") from None


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """A fresh hidden folder beside ``dest``, removed afterwards unless moved away."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.download-{uuid.uuid4().hex[:10]}"
    staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into(staging: Path, dest: Path) -> Path:
    """Move what ``staging`` holds into ``dest``, replacing same-named entries."""
    if not dest.exists() or (dest.is_dir() and not any(dest.iterdir())):
        with contextlib.suppress(FileNotFoundError):
            dest.rmdir()
        os.rename(staging, dest)
        return dest
    for child in staging.iterdir():
        existing = dest / child.name
        if existing.is_dir() and not existing.is_symlink():
            shutil.rmtree(existing)
        elif existing.exists() or existing.is_symlink():
            existing.unlink()
        os.rename(child, existing)
    return dest


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
