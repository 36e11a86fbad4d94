"""The shared artifact store: one suite of behaviour tests run over every kind of store (a
real folder, and a real S3-compatible HTTP server: moto), then what differs between them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from flagrun.artifacts import MARKER, ArtifactStore, FolderStore, S3Store, open_artifacts
from flagrun.errors import StoreError, UsageError
from flagrun.metrics import read_scalars
from flagrun.writer import MetricsWriter
from tests.helpers import free_port

SECRET = "s3cr3t-Never-Print-Me"
S3_PREFIX = "shared/artifacts"


def make_trial(folder: Path, accuracy: float = 0.9) -> Path:
    """A run folder shaped like a trial's: records, log, TensorBoard events, nested output."""
    (folder / "logs" / "train").mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": "COMPLETED", "acc": accuracy}))
    (folder / "output.log").write_text("epoch 1\nepoch 2\n")
    writer = MetricsWriter(folder / "logs" / "validation")
    writer.log({"epoch_accuracy": accuracy - 0.1}, step=0)
    writer.log({"epoch_accuracy": accuracy}, step=1)
    writer.close()
    (folder / "model" / "weights").mkdir(parents=True)
    (folder / "model" / "weights" / "w.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "empty").mkdir()
    return folder


def tree(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: file bytes, link targets, and folders."""
    found: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = path.read_bytes()
    return found


def validation_accuracy(run_dir: Path) -> list[float]:
    return [point.value for point in read_scalars(run_dir)["validation/epoch_accuracy"]]


def two_versions(tmp_path: Path, files: int = 60) -> list[Path]:
    """Two run folders with the same names, every file saying which version it belongs to."""
    versions = []
    for version in range(2):
        folder = tmp_path / f"v{version}"
        for index in range(files):
            (folder / f"d{index % 6}").mkdir(parents=True, exist_ok=True)
            (folder / f"d{index % 6}" / f"f{index}.txt").write_text(f"version {version}\n" * 50)
        versions.append(folder)
    return versions


def keep_uploading(store, versions: list[Path], key: str, stop: threading.Event, pause: float):
    """A thread re-uploading ``key`` alternately from each version until ``stop``."""
    errors: list[BaseException] = []

    def loop() -> None:
        turn = 0
        try:
            while not stop.is_set():
                store.upload(versions[turn % 2], key)
                turn += 1
                time.sleep(pause)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=loop)
    thread.start()
    return thread, errors


# ---------------------------------------------------------------- opening


def test_open_accepts_paths_file_urls_and_s3(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = open_artifacts(str(tmp_path / "abs"))
    relative = open_artifacts("rel/store")
    from_url = open_artifacts(f"file://{tmp_path}/from%20url")
    s3 = open_artifacts("s3://bucket/some/prefix/")
    assert isinstance(absolute, FolderStore) and absolute.root == tmp_path / "abs"
    assert relative.root == tmp_path / "rel" / "store" and relative.url == "rel/store"
    assert from_url.root == tmp_path / "from url" and from_url.root.is_dir()
    assert isinstance(s3, S3Store) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix")


@pytest.mark.parametrize("url", ["ftp://host/x", "gs://bucket/x", "hdfs:///x"])
def test_unknown_scheme_names_the_accepted_forms(url):
    with pytest.raises(UsageError) as caught:
        open_artifacts(url)
    assert "unknown scheme" in caught.value.message
    assert "s3://bucket/prefix" in caught.value.hint and "file:///" in caught.value.hint


def test_urls_that_cannot_work_are_refused_without_echoing_secrets():
    with pytest.raises(UsageError, match="no host"):
        open_artifacts("file://otherhost/data")
    with pytest.raises(UsageError, match="names no bucket"):
        open_artifacts("s3:///prefix")
    with pytest.raises(UsageError) as caught:
        open_artifacts(f"s3://AKIAXXX:{SECRET}@bucket/prefix")
    assert SECRET not in str(caught.value)


def test_importing_the_module_does_not_import_boto3():
    probe = "import sys, flagrun.artifacts; print(sorted(set(sys.modules) & {'boto3', 'botocore'}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------- the stores under test


@pytest.fixture(scope="module")
def s3_server():
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server, tmp_path, monkeypatch):
    """boto3 pointed at the moto server through the usual environment variables."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_server


@pytest.fixture
def bucket(s3_env):
    """A new, empty bucket on the moto server."""
    import boto3

    name = f"flagrun-{uuid.uuid4().hex[:16]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def object_names(bucket: str) -> list[str]:
    import boto3

    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


@dataclass
class Backend:
    """One kind of store under test, and the two looks behind its interface the suite needs."""

    name: str
    store: ArtifactStore
    manifest: Callable[[str], dict]  # the marker's JSON of the upload under a key
    half_upload: Callable[[str], None]  # a file stored under a key, its marker never written


def folder_backend(root: Path) -> Backend:
    store = open_artifacts(str(root))

    def half_upload(key: str) -> None:
        (store.root / key).mkdir(parents=True)
        (store.root / key / "run.json").write_text("{}")

    def manifest(key: str) -> dict:
        return json.loads((store.root / key / MARKER).read_text())

    return Backend("folder", store, manifest, half_upload)


def s3_backend(bucket: str) -> Backend:
    import boto3

    store = open_artifacts(f"s3://{bucket}/{S3_PREFIX}")
    client = boto3.client("s3")

    def half_upload(key: str) -> None:
        client.put_object(Bucket=bucket, Key=f"{S3_PREFIX}/{key}/run.json", Body=b"{}")

    def manifest(key: str) -> dict:
        marker = client.get_object(Bucket=bucket, Key=f"{S3_PREFIX}/{key}/{MARKER}")
        return json.loads(marker["Body"].read())

    return Backend("s3", store, manifest, half_upload)


@pytest.fixture(params=["folder", "s3"])
def backend(request, tmp_path) -> Backend:
    """Each kind of store in turn: a folder, then S3 under a prefix of a fresh bucket."""
    if request.param == "folder":
        return folder_backend(tmp_path / "store")
    return s3_backend(request.getfixturevalue("bucket"))


# ---------------------------------------------------------------- what every store does


def test_round_trip_keeps_files_folders_links_times_and_event_files(backend, tmp_path):
    trial = make_trial(tmp_path / "trial")
    (trial / "source").mkdir()
    (trial / "source" / "train.py").write_text("print('hi')\n")
    (trial / "source" / "same.py").symlink_to("train.py")
    (trial / "source" / "data").symlink_to(tmp_path)  # outside: skipped
    store = backend.store
    store.check()
    assert not store.exists("study/trials/0")

    store.upload(trial, "study/trials/0")
    assert store.exists("study/trials/0")
    assert store.keys("study") == ["study/trials/0"]

    got = store.download("study/trials/0", tmp_path / "got")
    assert got == tmp_path / "got"
    expected = tree(trial)
    del expected["source/data"]
    assert tree(got) == expected
    assert validation_accuracy(got) == pytest.approx([0.8, 0.9])
    original = (trial / "model" / "weights" / "w.bin").stat().st_mtime
    copied = (got / "model" / "weights" / "w.bin").stat().st_mtime
    # A folder copies the time with the file; S3 keeps it in the manifest, as a float.
    assert copied == (original if backend.name == "folder" else pytest.approx(original))
    assert not list(tmp_path.glob(".got*")), "no staging folder is left behind"


def test_an_upload_is_not_seen_before_its_marker_is_written(backend, tmp_path):
    store = backend.store
    backend.half_upload("study/trials/5")  # what a crash before the marker leaves
    assert not store.exists("study/trials/5")
    assert store.keys("study") == []
    with pytest.raises(StoreError, match="no complete upload"):
        store.download("study/trials/5", tmp_path / "got")

    store.upload(make_trial(tmp_path / "trial"), "study/trials/6")
    store.upload(make_trial(tmp_path / "trial2"), "study2/trials/0")
    assert store.keys("study") == ["study/trials/6"]
    assert store.keys() == ["study/trials/6", "study2/trials/0"]


def test_keys_lists_complete_uploads_under_a_key_path(backend, tmp_path):
    store = backend.store
    trial = make_trial(tmp_path / "trial")
    for key in ["study/trials/0", "study/trials/12", "study2/trials/0", "other/x"]:
        store.upload(trial, key)
    backend.half_upload("study/trials/half-made")  # no marker: not an upload
    assert store.keys("study") == ["study/trials/0", "study/trials/12"]
    assert store.keys("study/trials/12") == ["study/trials/12"]
    assert store.keys("") == ["other/x", "study/trials/0", "study/trials/12", "study2/trials/0"]
    assert store.keys("nothing/here") == []
    assert not store.exists("study/trials/half-made")


def test_symlinks_inside_are_kept_relative_and_outside_ones_skipped(backend, tmp_path):
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "images.bin").write_bytes(b"big local data")
    trial = make_trial(tmp_path / "trial")
    source = trial / "source"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    (source / "same.py").symlink_to("train.py")  # relative, inside
    (source / "abs_inside.py").symlink_to(source / "train.py")  # absolute, inside
    (trial / "latest_logs").symlink_to("logs")  # a folder link, inside
    (trial / "dangling").symlink_to("not-written-yet.txt")  # inside, target missing
    (source / "data").symlink_to(data)  # absolute, outside
    (source / "data_rel").symlink_to("../../dataset")  # relative, outside
    (source / "loop").symlink_to("loop")  # points at itself: inside, kept as it is

    store = backend.store
    store.upload(trial, "s/trials/1")
    got = store.download("s/trials/1", tmp_path / "got")

    assert os.readlink(got / "source" / "same.py") == "train.py"
    assert os.readlink(got / "source" / "abs_inside.py") == "train.py"
    assert (got / "source" / "abs_inside.py").read_text() == "print('hi')\n"
    assert os.readlink(got / "latest_logs") == "logs"
    assert (got / "latest_logs" / "validation").is_dir()
    assert os.readlink(got / "dangling") == "not-written-yet.txt"
    assert os.readlink(got / "source" / "loop") == "loop"
    for left_out in ["source/data", "source/data_rel"]:
        assert not os.path.lexists(got / left_out)
    manifest = backend.manifest("s/trials/1")
    assert sorted(manifest["skipped"]) == ["source/data", "source/data_rel"]
    assert "outside the run folder" in manifest["skipped"]["source/data"]


def test_reupload_replaces_the_earlier_upload_entirely(backend, tmp_path):
    store = backend.store
    first = make_trial(tmp_path / "first", accuracy=0.5)
    (first / "only-in-first.txt").write_text("stale")
    store.upload(first, "s/trials/2")
    second = make_trial(tmp_path / "second", accuracy=0.7)
    store.upload(second, "s/trials/2")

    got = store.download("s/trials/2", tmp_path / "got")
    assert tree(got) == tree(second)
    assert validation_accuracy(got) == pytest.approx([0.6, 0.7])
    assert store.keys("s") == ["s/trials/2"]


def test_download_into_an_existing_folder_replaces_same_names_only(backend, tmp_path):
    store = backend.store
    store.upload(make_trial(tmp_path / "trial"), "s/trials/3")
    dest = tmp_path / "collected"
    (dest / "logs").mkdir(parents=True)
    (dest / "logs" / "old-event-file").write_text("old")
    (dest / "run.json").write_text("old")
    (dest / "notes.txt").write_text("mine")

    store.download("s/trials/3", dest)
    assert (dest / "notes.txt").read_text() == "mine"
    assert json.loads((dest / "run.json").read_text())["status"] == "COMPLETED"
    assert not (dest / "logs" / "old-event-file").exists()
    assert not (dest / MARKER).exists()


@pytest.mark.slow  # several seconds: a whole job, or more
def test_two_workers_uploading_one_key_at_once_leave_one_whole_upload(backend, tmp_path):
    """Both uploads succeed, and every download meanwhile and after gets one of them whole:
    never files of both."""
    versions = two_versions(tmp_path, files=20)
    store = backend.store
    store.upload(versions[0], "s/trials/5")
    stop = threading.Event()
    first, first_errors = keep_uploading(store, versions, "s/trials/5", stop, pause=0)
    second, second_errors = keep_uploading(store, versions[::-1], "s/trials/5", stop, pause=0)
    mixed = []
    try:
        for attempt in range(5):
            got = store.download("s/trials/5", tmp_path / f"got{attempt}")
            texts = {path.read_text() for path in got.rglob("*.txt")}
            if len(texts) != 1:
                mixed.append(attempt)
    finally:
        stop.set()
        first.join()
        second.join()
    assert not first_errors and not second_errors, first_errors + second_errors
    assert not mixed, f"downloads {mixed} held files of both uploads"
    got = store.download("s/trials/5", tmp_path / "last")
    texts = [path.read_text() for path in got.rglob("*.txt")]
    assert len(texts) == 20 and len(set(texts)) == 1, sorted(set(texts))
    assert store.keys() == ["s/trials/5"]


def test_missing_key_and_non_folder_upload_are_one_line_store_errors(backend, tmp_path):
    store = backend.store
    with pytest.raises(StoreError, match="no complete upload 's/trials/9'") as missing:
        store.download("s/trials/9", tmp_path / "got")
    with pytest.raises(StoreError, match="not a folder") as not_a_folder:
        store.upload(tmp_path / "missing", "s/trials/9")
    assert not (tmp_path / "got").exists()
    for caught in (missing, not_a_folder):
        assert "\n" not in caught.value.message


@pytest.mark.parametrize("key", ["", "/", "../escape", "study/../../x", ".hidden/x", "a/.tmp"])
def test_bad_keys_are_refused(backend, key):
    with pytest.raises(UsageError, match="artifact key"):
        backend.store.exists(key)


def test_readers_never_see_a_partial_tree_during_reuploads(backend, tmp_path):
    versions = two_versions(tmp_path)
    store = backend.store
    store.upload(versions[0], "s/trials/4")
    stop = threading.Event()
    thread, errors = keep_uploading(store, versions, "s/trials/4", stop, pause=0.02)
    seen_versions: set[str] = set()
    downloads = 0
    deadline = time.monotonic() + 15.0  # S3 (a local server) downloads more slowly
    try:
        while (downloads < 3 or len(seen_versions) < 2) and time.monotonic() < deadline:
            listed = store.keys("s")
            assert listed in ([], ["s/trials/4"]), listed  # absent only between two renames
            got = store.download("s/trials/4", tmp_path / f"got{downloads}")
            contents = {path.read_text() for path in got.rglob("*.txt")}
            assert len(list(got.rglob("*.txt"))) == 60 and len(contents) == 1
            seen_versions |= contents
            downloads += 1
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert downloads >= 3 and len(seen_versions) == 2
    if isinstance(store, FolderStore):
        visible = [p.name for p in (store.root / "s" / "trials").iterdir() if p.name[0] != "."]
        assert visible == ["4"]


# ---------------------------------------------------------------- only the folder store
# A folder re-upload renames the earlier tree aside and leaves it for the readers on it
# (S3 keeps each upload under a version of its own instead).


def test_folder_root_that_cannot_be_created_is_a_store_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError) as caught:
        open_artifacts(str(blocker / "store"))
    assert str(blocker / "store") in caught.value.message and caught.value.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bits")
def test_read_only_root_is_a_store_error_on_check_and_upload(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    root.chmod(0o555)
    try:
        store = open_artifacts(str(root))
        with pytest.raises(StoreError, match="cannot write"):
            store.check()
        with pytest.raises(StoreError, match="cannot write") as caught:
            store.upload(make_trial(tmp_path / "trial"), "study/trials/0")
        assert "read-write" in caught.value.hint
    finally:
        root.chmod(0o755)


def test_folder_reupload_keeps_the_old_tree_beside_for_readers(tmp_path):
    store = open_artifacts(str(tmp_path / "store"))
    store.upload(make_trial(tmp_path / "first", accuracy=0.5), "s/trials/2")
    store.upload(make_trial(tmp_path / "second", accuracy=0.7), "s/trials/2")
    beside = sorted(p.name for p in (store.root / "s" / "trials").iterdir())
    assert [name[:7] for name in beside] == [".2.old-", "2"]  # the old one, kept for readers
    assert store.keys("s") == ["s/trials/2"]


def test_old_trees_are_swept_once_past_their_time_and_crashed_temps_after_a_day(tmp_path):
    store = FolderStore("store", tmp_path / "store", keep_old_seconds=0)
    trial = make_trial(tmp_path / "trial")
    store.upload(trial, "s/trials/0")
    trials = store.root / "s" / "trials"
    long_ago = int(time.time()) - 2 * 24 * 3600
    (trials / f".7.tmp-{long_ago}-deadbeef").mkdir()  # a crashed upload's
    in_progress = f".8.tmp-{int(time.time())}-cafe"  # an upload running on another worker
    (trials / in_progress).mkdir()
    store.upload(trial, "s/trials/0")
    store.upload(trial, "s/trials/1")
    assert sorted(p.name for p in trials.iterdir()) == [in_progress, "0", "1"]


def test_two_workers_uploading_one_key_at_once_both_succeed(tmp_path):
    versions = two_versions(tmp_path, files=20)
    store = open_artifacts(str(tmp_path / "store"))
    stop = threading.Event()
    first, first_errors = keep_uploading(store, versions, "s/trials/5", stop, pause=0)
    second, second_errors = keep_uploading(store, versions[::-1], "s/trials/5", stop, pause=0)
    time.sleep(0.5)
    stop.set()
    first.join()
    second.join()
    assert not first_errors and not second_errors, first_errors + second_errors
    got = store.download("s/trials/5", tmp_path / "got")
    assert len({path.read_text() for path in got.rglob("*.txt")}) == 1
    assert store.keys() == ["s/trials/5"]
    assert not list((store.root / "s" / "trials").glob(".5.tmp-*"))


# ---------------------------------------------------------------- only the S3 store


def test_s3_objects_lie_under_the_prefix_and_the_marker_among_them(bucket, tmp_path):
    store = open_artifacts(f"s3://{bucket}/{S3_PREFIX}")
    store.upload(make_trial(tmp_path / "trial"), "study/trials/0")
    names = object_names(bucket)
    assert names[0].startswith(f"{S3_PREFIX}/study/trials/0/")
    assert f"{S3_PREFIX}/study/trials/0/{MARKER}" in names


def test_s3_reupload_keeps_the_old_version_for_readers_then_sweeps_it(bucket, tmp_path):
    first = make_trial(tmp_path / "first", accuracy=0.5)
    (first / "only-in-first.txt").write_text("stale")
    second = make_trial(tmp_path / "second", accuracy=0.7)
    store = open_artifacts(f"s3://{bucket}")
    store.upload(first, "s/trials/1")
    store.upload(second, "s/trials/1")
    stale = [name for name in object_names(bucket) if name.endswith("/only-in-first.txt")]
    assert len(stale) == 1  # a reader that started on the first upload can finish it

    got = store.download("s/trials/1", tmp_path / "got")
    assert tree(got) == tree(second)
    assert validation_accuracy(got) == pytest.approx([0.6, 0.7])

    impatient = S3Store(f"s3://{bucket}", keep_old_seconds=0)
    impatient.upload(second, "s/trials/1")  # the sweep after it takes what no marker names
    names = object_names(bucket)
    assert not [name for name in names if name.endswith("/only-in-first.txt")]
    assert len({name.split("/")[3] for name in names if "/.v-" in name}) == 1
    assert tree(store.download("s/trials/1", tmp_path / "again")) == tree(second)


def test_s3_reads_an_upload_made_before_versions(bucket, tmp_path):
    """Format-1 markers name files lying directly under the key: still downloadable."""
    import boto3

    trial = make_trial(tmp_path / "trial")
    client = boto3.client("s3")
    files = {}
    for path in trial.rglob("*"):
        if path.is_file():
            rel = path.relative_to(trial).as_posix()
            client.put_object(Bucket=bucket, Key=f"s/trials/2/{rel}", Body=path.read_bytes())
            files[rel] = path.stat().st_size
    dirs = sorted(p.relative_to(trial).as_posix() for p in trial.rglob("*") if p.is_dir())
    marker = {"format": 1, "upload_id": "old", "files": files, "dirs": dirs}
    client.put_object(Bucket=bucket, Key=f"s/trials/2/{MARKER}", Body=json.dumps(marker))
    got = open_artifacts(f"s3://{bucket}").download("s/trials/2", tmp_path / "got")
    assert {k: v for k, v in tree(got).items()} == tree(trial)


def test_s3_missing_bucket_is_one_clear_store_error(s3_env, tmp_path):
    store = open_artifacts("s3://no-such-bucket-here/p")
    for attempt in (store.check, lambda: store.upload(make_trial(tmp_path / "t"), "s/trials/0")):
        with pytest.raises(StoreError) as caught:
            attempt()
        assert "'no-such-bucket-here' does not exist" in caught.value.message
        assert "\n" not in caught.value.message and SECRET not in str(caught.value)


def test_s3_unreachable_endpoint_is_a_store_error(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = open_artifacts("s3://bucket/p")
    with pytest.raises(StoreError) as caught:
        store.exists("s/trials/0")
    assert "cannot reach http://127.0.0.1:" in caught.value.message
    assert "AWS_ENDPOINT_URL" in caught.value.hint


def test_s3_access_denied_is_a_store_error_without_the_secret(bucket, s3_server, monkeypatch):
    import urllib.request

    import boto3

    iam = boto3.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    def moto_auth(count: str) -> None:
        request = urllib.request.Request(
            f"{s3_server}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    moto_auth("0")  # from now on moto checks IAM permissions; "nobody" has none
    try:
        with pytest.raises(StoreError) as caught:
            open_artifacts(f"s3://{bucket}/p").exists("s/trials/0")
    finally:
        moto_auth("inf")
    assert "access denied" in caught.value.message and "credentials" in caught.value.hint
    assert key["SecretAccessKey"] not in str(caught.value)


def test_s3_without_boto3_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # what `import boto3` meets when absent
    with pytest.raises(UsageError) as caught:
        open_artifacts("s3://bucket/p").exists("s/trials/0")
    assert caught.value.message == "s3:// artifact stores need boto3"
    assert caught.value.hint == "pip install 'flagrun[s3]'"
