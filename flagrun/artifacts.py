"""The artifact store a distributed study shares: every finished trial's run folder, by key.

Workers on several machines upload each finished trial's folder under a key
such as ``mystudy/trials/3``; ``flagrun trials`` and ``flagrun collect`` on any
machine list and download them. Two kinds of store, one interface:

* a folder (a local path, an NFS mount, ``file:///path``): an upload is
  copied into a hidden temp sibling and renamed into place; the tree it
  replaces is renamed aside and kept a while for the readers still on it.
  A download holds the tree it starts on open, so it gets the old tree or
  the new one, never a mix or a half-copied one;
* S3 or any S3-compatible server (``s3://bucket/prefix``, boto3 configured
  the usual way: environment credentials, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``
  for MinIO and friends): the marker is deleted, the files put, stale objects
  of an earlier upload deleted, and the marker put last.

Either way an upload is complete when its marker ``.flagrun-complete`` exists.
The marker is a small JSON manifest (files, sizes, symlinks, what was skipped)
with an upload id. An S3 download fetches the files the manifest lists and
checks the upload id again afterwards, retrying when a re-upload raced it.

Symlinks: a link that stays inside the run folder is kept (relative; an
absolute one is rewritten relative). A link that points outside it (datasets
linked into the source snapshot, say) is local data: it is skipped and listed
under ``skipped`` in the manifest. Special files (sockets, fifos) are skipped
too. Names starting with ``.flagrun-complete`` at the top of a run folder are
reserved.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

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
        )


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


def open_artifacts(url: str) -> ArtifactStore:
    """The store at ``url``: a folder path, ``file:///path`` or ``s3://bucket/prefix``."""
    if not url or not url.strip():
        raise UsageError("the artifact store URL is empty", hint=f"give {_ACCEPTED}")
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme == "":
        return FolderStore(url, Path(url))
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise UsageError(
                f"artifact store {url!r}: file URLs name no host",
                hint="write file:///abs/path (three slashes), or mount the share and give its path",
            )
        return FolderStore(url, Path(unquote(parts.path)))
    if scheme == "s3":
        return S3Store(url)
    raise UsageError(f"artifact store {url!r}: unknown scheme {scheme!r}", hint=f"give {_ACCEPTED}")


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


def _is_under(filename: Any, folder: Path) -> bool:
    if not isinstance(filename, str):
        return False
    folder_text = os.path.realpath(folder)
    return os.path.realpath(filename).startswith(folder_text + os.sep)


# ---------------------------------------------------------------- S3 store


class S3Store(ArtifactStore):
    """An artifact store in an S3 bucket (or an S3-compatible server via AWS_ENDPOINT_URL)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise UsageError(
                "s3:// artifact store URLs must not hold credentials",
                hint="give s3://bucket/prefix; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "or AWS_PROFILE in the environment",
            )
        if not parts.netloc:
            raise UsageError(f"artifact store {url!r} names no bucket", hint=f"give {_ACCEPTED}")
        self.url = url
        self.bucket = parts.netloc
        self.prefix = "/".join(part for part in parts.path.split("/") if part)
        self._client_cache: Any = None

    # -- the verbs

    def check(self) -> None:
        with self._errors("check the bucket"):
            self._client().head_bucket(Bucket=self.bucket)

    def upload(self, local_dir: Path, key: str) -> None:
        key = check_key(key)
        entries, skipped = plan_upload(local_dir)
        source = Path(os.path.realpath(local_dir))
        manifest = Manifest(upload_id=uuid.uuid4().hex, skipped=skipped)
        for entry in entries:
            if entry.kind == "dir":
                manifest.dirs.append(entry.relpath)
            elif entry.kind == "link":
                manifest.links[entry.relpath] = entry.link_target
            else:
                stat = (source / entry.relpath).stat()
                manifest.files[entry.relpath] = stat.st_size
                manifest.mtimes[entry.relpath] = stat.st_mtime
        base = self._object(key)
        with self._errors(f"upload {key!r}"):
            client = self._client()
            client.delete_object(Bucket=self.bucket, Key=f"{base}/{MARKER}")
            _run_all(
                lambda rel: client.upload_file(str(source / rel), self.bucket, f"{base}/{rel}"),
                list(manifest.files),
            )
            stale = [name for name in self._list(f"{base}/") if name[len(base) + 1 :] != MARKER]
            stale = [name for name in stale if name[len(base) + 1 :] not in manifest.files]
            self._delete(stale)
            client.put_object(
                Bucket=self.bucket,
                Key=f"{base}/{MARKER}",
                Body=manifest.to_json().encode("utf-8"),
                ContentType="application/json",
            )

    def exists(self, key: str) -> bool:
        return self._manifest(check_key(key)) is not None

    def keys(self, prefix: str = "") -> list[str]:
        prefix = _check_prefix(prefix)
        start = self._object(prefix) if prefix else self.prefix
        listed = self._list(f"{start}/" if start else "")
        skip = len(self.prefix) + 1 if self.prefix else 0
        suffix = f"/{MARKER}"
        found = [name[skip : -len(suffix)] for name in listed if name.endswith(suffix)]
        return sorted(key for key in found if key and not _hidden(key))

    def download(self, key: str, dest: Path) -> Path:
        key = check_key(key)
        dest = Path(os.path.abspath(dest))
        for attempt in range(DOWNLOAD_ATTEMPTS):
            time.sleep(RETRY_PAUSE_SECONDS * attempt)
            manifest = self._manifest(key)
            if manifest is None:
                raise StoreError(f"no complete upload {key!r} in the artifact store {self.url}")
            done = _stage_and_move(dest, partial(self._fetch, key, manifest))
            if done is not None:
                return done
        raise StoreError(f"upload {key!r} in {self.url} kept changing while it was downloaded")

    # -- helpers

    def _fetch(self, key: str, manifest: Manifest, staging: Path) -> bool:
        """Download every file of ``manifest``; False when a re-upload changed them meanwhile."""
        base = self._object(key)
        for rel in manifest.dirs:
            (staging / rel).mkdir(parents=True, exist_ok=True)
        client = self._client()

        def fetch(rel: str) -> bool:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                client.download_file(self.bucket, f"{base}/{rel}", str(target))
            except Exception as exc:  # botocore's errors; a missing object means a re-upload
                if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return False
                raise
            if rel in manifest.mtimes:
                os.utime(target, (manifest.mtimes[rel], manifest.mtimes[rel]))
            return target.stat().st_size == manifest.files[rel]

        with self._errors(f"download {key!r}"):
            if not all(_run_all(fetch, list(manifest.files))):
                return False
        for rel, target in manifest.links.items():
            link = staging / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, link)
        latest = self._manifest(key)
        return latest is not None and latest.upload_id == manifest.upload_id

    def _manifest(self, key: str) -> Manifest | None:
        with self._errors(f"read {key!r}"):
            try:
                body = (
                    self._client()
                    .get_object(Bucket=self.bucket, Key=f"{self._object(key)}/{MARKER}")["Body"]
                    .read()
                )
            except Exception as exc:
                if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise
        try:
            return Manifest.from_json(body)
        except (ValueError, KeyError):
            return None

    def _list(self, prefix: str) -> list[str]:
        with self._errors("list the bucket"):
            pages = self._client().get_paginator("list_objects_v2")
            names = []
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                names.extend(item["Key"] for item in page.get("Contents", []))
            return names

    def _delete(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            batch = [{"Key": name} for name in names[start : start + 1000]]
            self._client().delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )

    def _object(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _client(self) -> Any:
        if self._client_cache is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise UsageError(
                    "s3:// artifact stores need boto3", hint="pip install 'flagrun[s3]'"
                ) from None
            config = Config(connect_timeout=10, read_timeout=60)
            with self._errors("connect"):
                self._client_cache = boto3.session.Session().client("s3", config=config)
        return self._client_cache

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn boto3's errors into one-line StoreErrors (no traceback, no secret)."""
        try:
            yield
        except (StoreError, UsageError):
            raise
        except Exception as exc:
            if not type(exc).__module__.startswith(("botocore", "boto3", "s3transfer")):
                raise
            raise self._store_error(doing, exc) from None

    def _store_error(self, doing: str, exc: Exception) -> StoreError:
        code = _error_code(exc)
        where = f"s3://{self.bucket}"
        name = type(exc).__name__
        if code in {"NoSuchBucket"} or (code == "404" and doing == "check the bucket"):
            return StoreError(
                f"S3 bucket {self.bucket!r} does not exist ({self.url})",
                hint="create the bucket, or fix the name in the artifact store URL",
            )
        if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return StoreError(
                f"access denied to {where} ({code}) while trying to {doing}",
                hint="check the AWS credentials in the environment (AWS_ACCESS_KEY_ID, "
                "AWS_PROFILE) and their permissions on the bucket",
            )
        if name == "NoCredentialsError":
            return StoreError(
                f"no AWS credentials found for {where}",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            )
        if name in {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"}:
            endpoint = getattr(self._client_cache, "meta", None)
            endpoint_url = endpoint.endpoint_url if endpoint is not None else "the S3 endpoint"
            return StoreError(
                f"cannot reach {endpoint_url} for {where}",
                hint="check the network and AWS_ENDPOINT_URL (for MinIO and other S3 servers)",
            )
        return StoreError(f"S3 error on {where} while trying to {doing}: {_scrub(str(exc))}")


def _run_all(work: Any, items: list[str]) -> list[Any]:
    """``work(item)`` for every item, a few at a time (S3 latency dominates small files)."""
    if len(items) <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        return list(pool.map(work, items))


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _hidden(key: str) -> bool:
    return any(part.startswith(".") for part in key.split("/"))


def _scrub(text: str) -> str:
    """``text`` without the values of the AWS secrets in the environment."""
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        secret = os.environ.get(name, "")
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text.splitlines()[0] if text else text
