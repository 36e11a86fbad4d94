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
  for MinIO and friends): each upload's files go under a version folder of
  their own (``<key>/.v-<time>-<id>/``, never overwritten), then the marker
  naming that version is put; versions no marker names are deleted once they
  are as old as a folder store keeps its old trees. Two workers uploading one
  key at once both succeed and the last marker wins, never a mix of the two.

Either way an upload is complete when its marker ``.flagrun-complete`` exists.
The marker is a small JSON manifest (files, sizes, symlinks, what was skipped)
with an upload id. An S3 download fetches the files of the version the
manifest names (an upload from before versions: checking the upload id again
afterwards, retrying when a re-upload raced it).

Symlinks: a link that stays inside the run folder is kept (relative; an
absolute one is rewritten relative). A link that points outside it (datasets
linked into the source snapshot, say) is local data: it is skipped and listed
under ``skipped`` in the manifest. Special files (sockets, fifos) are skipped
too. Names starting with ``.flagrun-complete`` at the top of a run folder are
reserved.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from flagrun.artifacts._base import _ACCEPTED, MARKER, ArtifactStore, Manifest, check_key
from flagrun.artifacts.folder import FolderStore
from flagrun.artifacts.s3 import S3Store
from flagrun.errors import UsageError

__all__ = ["MARKER", "ArtifactStore", "FolderStore", "Manifest", "S3Store", "check_key",
           "open_artifacts"]  # fmt: skip


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
