"""The artifact store on S3 or any S3-compatible server (``s3://bucket/prefix``)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flagrun.artifacts._base import (
    _ACCEPTED,
    DOWNLOAD_ATTEMPTS,
    KEEP_OLD_SECONDS,
    MARKER,
    RETRY_PAUSE_SECONDS,
    ArtifactStore,
    Manifest,
    _check_prefix,
    _stage_and_move,
    check_key,
    plan_upload,
)
from flagrun.errors import StoreError, UsageError

VERSION_PREFIX = ".v-"  # each upload's files lie in <key>/.v-<time>-<id>/

# ---------------------------------------------------------------- S3 store


class S3Store(ArtifactStore):
    """An artifact store in an S3 bucket (or an S3-compatible server via AWS_ENDPOINT_URL)."""

    def __init__(self, url: str, keep_old_seconds: float = KEEP_OLD_SECONDS) -> None:
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
        self.keep_old_seconds = keep_old_seconds
        self._client_cache: Any = None

    # -- the verbs

    def check(self) -> None:
        with self._errors("check the bucket"):
            self._client().head_bucket(Bucket=self.bucket)

    def upload(self, local_dir: Path, key: str) -> None:
        """Put the files under a version folder of their own, then the marker naming it.

        Objects of a version are never overwritten, so a marker always names one whole
        upload, even when two workers upload one key at once (the last marker wins).
        Versions no marker names any more are swept once ``keep_old_seconds`` old.
        """
        key = check_key(key)
        entries, skipped = plan_upload(local_dir)
        source = Path(os.path.realpath(local_dir))
        stamp = f"{int(time.time())}-{uuid.uuid4().hex[:10]}"
        manifest = Manifest(upload_id=stamp, skipped=skipped, root=f"{VERSION_PREFIX}{stamp}")
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
        version = f"{base}/{manifest.root}"
        with self._errors(f"upload {key!r}"):
            client = self._client()

            def put(rel: str) -> None:
                client.upload_file(str(source / rel), self.bucket, f"{version}/{rel}")

            _run_all(put, list(manifest.files))
            # A sweep by another worker cannot have taken these (they are seconds old), but
            # a marker must never name a missing object: look, and put back what is not there.
            there = {name[len(version) + 1 :] for name, _ in self._list(f"{version}/")}
            _run_all(put, [rel for rel in manifest.files if rel not in there])
            client.put_object(
                Bucket=self.bucket,
                Key=f"{base}/{MARKER}",
                Body=manifest.to_json().encode("utf-8"),
                ContentType="application/json",
            )
            self._sweep(base)

    def _sweep(self, base: str) -> None:
        """Delete the objects under ``base`` that the marker does not name, once they are
        ``keep_old_seconds`` old (readers of the version they belong to may still be on it)."""
        current = self._manifest_at(base)
        if current is None:
            return
        cutoff = time.time() - self.keep_old_seconds
        stale = []
        for name, modified in self._list(f"{base}/"):
            rel = name[len(base) + 1 :]
            named = rel.startswith(f"{current.root}/") if current.root else rel in current.files
            if rel != MARKER and not named and modified < cutoff:
                stale.append(name)
        self._delete(stale)

    def exists(self, key: str) -> bool:
        return self._manifest(check_key(key)) is not None

    def keys(self, prefix: str = "") -> list[str]:
        prefix = _check_prefix(prefix)
        start = self._object(prefix) if prefix else self.prefix
        listed = self._list(f"{start}/" if start else "")
        skip = len(self.prefix) + 1 if self.prefix else 0
        suffix = f"/{MARKER}"
        found = [name[skip : -len(suffix)] for name, _ in listed if name.endswith(suffix)]
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
        """Download every file of ``manifest``; False when a re-upload changed them meanwhile
        (an upload from before versions, whose files a re-upload overwrites, or one swept)."""
        base = self._object(key)
        files_at = f"{base}/{manifest.root}" if manifest.root else base
        for rel in manifest.dirs:
            (staging / rel).mkdir(parents=True, exist_ok=True)
        client = self._client()

        def fetch(rel: str) -> bool:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                client.download_file(self.bucket, f"{files_at}/{rel}", str(target))
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
        if manifest.root:
            return True  # a version's objects never change
        latest = self._manifest(key)
        return latest is not None and latest.upload_id == manifest.upload_id

    def _manifest(self, key: str) -> Manifest | None:
        return self._manifest_at(self._object(key))

    def _manifest_at(self, base: str) -> Manifest | None:
        with self._errors(f"read {base!r}"):
            try:
                body = (
                    self._client()
                    .get_object(Bucket=self.bucket, Key=f"{base}/{MARKER}")["Body"]
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

    def _list(self, prefix: str) -> list[tuple[str, float]]:
        """Every object under ``prefix``: its name and when it was last written (epoch s)."""
        with self._errors("list the bucket"):
            pages = self._client().get_paginator("list_objects_v2")
            found: list[tuple[str, float]] = []
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend(
                    (item["Key"], item["LastModified"].timestamp())
                    for item in page.get("Contents", [])
                )
            return found

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


def _error_code(exc: BaseException) -> str:
    """The S3 error code of ``exc``, or of the client error it wraps (boto3's transfers
    raise S3UploadFailedError while handling one)."""
    current: BaseException | None = exc
    for _ in range(5):
        if current is None:
            break
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        current = current.__cause__ or current.__context__
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
