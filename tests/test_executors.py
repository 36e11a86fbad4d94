"""One conformance suite over every executor: the same trials, run by the local executor
and by the Dask executor on a real cluster (a scheduler and three workers on this machine,
each worker in a folder of its own; started once for the module)."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flagrun import runner, store
from flagrun.executors import Executor, LocalExecutor, TrialProcess
from flagrun.records import RunStatus

distributed = pytest.importorskip("distributed")

from tests.dask_cluster import Cluster, cluster_env  # noqa: E402

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from flagrun import flags, flag_integer, flag_string, log_metrics

    import flagrun

    FLAGS = flags(flag_string("mode", "ok"), flag_integer("points", 0))
    here = os.getcwd()
    backup = flagrun.checkpoint_dir() / "keras-fit-1"  # as a Keras fit's backup
    backup.mkdir()
    (backup / "latest.weights.h5").write_text("weights")
    with open("seen.json", "w") as f:
        json.dump({"argv": sys.argv[1:], "cwd": here, "pid": os.getpid(),
                   "run_dir": os.environ.get("FLAGRUN_RUN_DIR"),
                   "checkpoint": str(flagrun.checkpoint_dir()),
                   "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
                   "job_env": os.environ.get("EXTRA_ENV")}, f)
    for step in range(FLAGS.points):
        log_metrics({"score": step / 10}, step=step)
    release = os.environ.get("RELEASE_FILE")
    if FLAGS.mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if FLAGS.mode == "clean-term":
        def bye(signum, frame):
            open("got-term", "w").close()
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
    if FLAGS.mode in ("ignore-term", "clean-term", "hang"):
        open(os.environ["READY_FILE"], "w").close()
        time.sleep(60)
    if FLAGS.mode == "wait":
        while release and not os.path.exists(release):
            time.sleep(0.05)
    if FLAGS.mode == "gpu":
        time.sleep(1.5)
    """
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    cluster = Cluster(root, cluster_env())
    try:
        cluster.start(
            {
                "w1": {"nthreads": 1},
                "w2": {"nthreads": 1},
                "gpu": {"nthreads": 2, "resources": "GPU=2"},
            }
        )
        yield cluster
    finally:
        cluster.stop()


Factory = Callable[..., Executor]


@pytest.fixture(params=["local", pytest.param("dask", marks=pytest.mark.cluster)])
def make_executor(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """A factory of executors of one kind: ``make_executor(gpu=False)``."""
    made: list[Executor] = []

    def make(gpu: bool = False) -> Executor:
        if request.param == "local":
            executor: Executor = LocalExecutor(["0", "1"] if gpu else [])
        else:
            from flagrun.executors.dask import DaskExecutor, connect

            cluster = request.getfixturevalue("cluster")
            executor = DaskExecutor(connect(cluster.address), gpus=gpu, shared="no")
        made.append(executor)
        return executor

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for executor in made:
        executor.close()


def trial_spec(tmp: Path, trial_id: int, *flags: str, timeout: float | None = None,
               **env: str) -> runner.RunSpec:  # fmt: skip
    """A trial of SCRIPT in a job folder on the driver's side, as the tuner builds one."""
    job = tmp / "driver" / "job"
    source = job / "source"
    if not source.exists():
        source.mkdir(parents=True)
        (source / "trial.py").write_text(SCRIPT)
    run_dir = job / "trials" / str(trial_id)
    run_dir.mkdir(parents=True)
    values: dict[str, Any] = dict(item.split("=", 1) for item in flags)
    return runner.RunSpec(
        script=source / "trial.py",
        run_dir=run_dir,
        source_dir=source,
        project_dir=tmp / "driver",
        flags=values,
        timeout=timeout,
        env={"FLAGRUN_TRIAL_ID": str(trial_id), **env},
        echo=False,
        source_hash=f"test-{tmp.name}",
        job="job",
        trial_id=trial_id,
    )


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def finish(executor: Executor, trial: TrialProcess, timeout: float = 30.0) -> runner.RunResult:
    """What the loop does: wait through the executor until the trial has exited."""
    deadline = time.monotonic() + timeout
    while not trial.poll():
        assert time.monotonic() < deadline, "the trial did not end"
        executor.wait([trial], 0.5)
    return trial.result()


def test_a_trial_runs_with_its_argv_and_env_in_its_own_folder_and_comes_back_whole(
    make_executor: Factory, tmp_path: Path
) -> None:
    executor = make_executor()
    spec = trial_spec(tmp_path, 1, "mode=ok", "points=3", EXTRA_ENV="from-the-spec")
    result = finish(executor, executor.start(spec))

    assert result.status == RunStatus.COMPLETED and result.exit_code == 0 and not result.lost
    assert result.run_dir == spec.run_dir
    seen = _json(spec.run_dir / "seen.json")
    assert seen["argv"] == ["--mode=ok", "--points=3"]
    assert seen["job_env"] == "from-the-spec"
    assert seen["cwd"] == seen["run_dir"]  # the script ran in its run folder
    assert seen["checkpoint"] == str(Path(seen["run_dir"]) / "checkpoint")
    record = store.read_run(spec.run_dir)
    assert record.status == RunStatus.COMPLETED
    assert record.metrics["score"]["step"] == 2
    assert (spec.run_dir / store.LOG_FILE).exists()
    assert record.command.endswith("trial.py --mode=ok --points=3")
    if make_executor.kind == "dask":  # type: ignore[attr-defined]
        # It ran on a worker's disk, and its whole folder came back here.
        assert seen["run_dir"] != str(spec.run_dir)
        assert seen["run_dir"].startswith(str(tmp_path.parent))  # below a worker's folder
        assert not seen["run_dir"].startswith(str(tmp_path))
        assert record.worker is not None and record.worker["run_dir"] == seen["run_dir"]
        assert not Path(seen["run_dir"]).exists()  # the worker's copy is gone
        assert list((spec.run_dir / "logs").glob("*tfevents*"))
        assert not (spec.run_dir / "checkpoint" / "keras-fit-1").exists()  # not sent back
    else:
        assert seen["run_dir"] == str(spec.run_dir)


def test_live_metric_points_reach_the_driver_before_the_trial_ends(
    make_executor: Factory, tmp_path: Path
) -> None:
    executor = make_executor()
    release = tmp_path / "release"
    spec = trial_spec(tmp_path, 1, "mode=wait", "points=4", RELEASE_FILE=str(release))
    trial = executor.start(spec)
    try:

        def four_points() -> bool:
            trial.metrics.poll()
            return len(trial.metrics.scalars.get("score", [])) == 4

        wait_until(four_points)
        assert not trial.poll()  # still running: the points came live
        assert [p.step for p in trial.metrics.scalars["score"]] == [0, 1, 2, 3]
        assert trial.metrics.tags() == ["score"]
    finally:
        release.touch()
    result = finish(executor, trial)
    assert result.status == RunStatus.COMPLETED
    assert [p.value for p in trial.metrics.scalars["score"]] == pytest.approx([0, 0.1, 0.2, 0.3])


def test_stop_sends_sigterm_first(make_executor: Factory, tmp_path: Path) -> None:
    executor = make_executor()
    ready = tmp_path / "ready"
    spec = trial_spec(tmp_path, 1, "mode=clean-term", READY_FILE=str(ready))
    trial = executor.start(spec)
    wait_until(ready.exists)
    trial.stop(RunStatus.PRUNED, "pruned at step 3", 10.0)
    started = time.monotonic()
    result = finish(executor, trial)
    assert time.monotonic() - started < 5  # it exited on SIGTERM, long before the grace
    assert result.status == RunStatus.PRUNED and result.reason == "pruned at step 3"
    assert result.signal is None and result.exit_code == 0
    assert (spec.run_dir / "got-term").exists()
    assert store.read_run(spec.run_dir).status == RunStatus.PRUNED


def test_stop_kills_a_trial_that_ignores_sigterm_after_the_grace(
    make_executor: Factory, tmp_path: Path
) -> None:
    executor = make_executor()
    ready = tmp_path / "ready"
    spec = trial_spec(tmp_path, 1, "mode=ignore-term", READY_FILE=str(ready))
    trial = executor.start(spec)
    wait_until(ready.exists)
    started = time.monotonic()
    trial.stop(RunStatus.KILLED, "stopped by the test", 1.0)
    result = finish(executor, trial)
    took = time.monotonic() - started
    assert 0.9 < took < 6
    assert result.status == RunStatus.KILLED and result.reason == "stopped by the test"
    assert result.signal == "SIGKILL"
    assert store.read_run(spec.run_dir).status == RunStatus.KILLED


def test_the_trial_timeout_is_enforced(make_executor: Factory, tmp_path: Path) -> None:
    executor = make_executor()
    ready = tmp_path / "ready"
    spec = trial_spec(tmp_path, 1, "mode=hang", timeout=1.0, READY_FILE=str(ready))
    started = time.monotonic()
    result = finish(executor, executor.start(spec))
    assert time.monotonic() - started < 10
    assert result.status == RunStatus.KILLED and result.reason == "timeout after 1 s"
    assert store.read_run(spec.run_dir).reason == "timeout after 1 s"


def test_each_running_trial_gets_its_own_gpu(make_executor: Factory, tmp_path: Path) -> None:
    executor = make_executor(gpu=True)
    specs = [trial_spec(tmp_path, n, "mode=gpu") for n in (1, 2)]
    trials = [executor.start(spec) for spec in specs]
    results = [finish(executor, trial) for trial in trials]
    assert all(result.status == RunStatus.COMPLETED for result in results)
    devices = {_json(spec.run_dir / "seen.json")["cvd"] for spec in specs}
    assert devices == {"0", "1"}
    if make_executor.kind == "dask":  # type: ignore[attr-defined]
        # Only the worker started with --resources GPU=2 runs GPU trials.
        for spec in specs:
            assert "/gpu/" in _json(spec.run_dir / "seen.json")["run_dir"]
            assert store.read_run(spec.run_dir).worker["gpu"] in ("0", "1")


def test_trials_without_a_gpu_get_no_device(make_executor: Factory, tmp_path: Path) -> None:
    executor = make_executor()
    spec = trial_spec(tmp_path, 1, "mode=ok")
    assert finish(executor, executor.start(spec)).status == RunStatus.COMPLETED
    assert _json(spec.run_dir / "seen.json")["cvd"] == os.environ.get("CUDA_VISIBLE_DEVICES")


def _json(path: Path) -> Any:
    import json

    return json.loads(path.read_text())


# -- the Dask executor's own ---------------------------------------------------------------

BIG = 64 * 1024  # bytes the "big" trial writes


def dask_executor(cluster: Cluster, **options: Any) -> Executor:
    from flagrun.executors.dask import DaskExecutor, connect

    return DaskExecutor(connect(cluster.address), gpus=False, shared="no", **options)


def big_trial(tmp_path: Path) -> runner.RunSpec:
    spec = trial_spec(tmp_path, 1, "mode=ok", "points=2")
    (spec.source_dir / "trial.py").write_text(
        SCRIPT + f"\nopen('big.bin', 'wb').write(b'x' * {BIG})\n"
    )
    return spec


@pytest.mark.cluster
def test_a_folder_over_the_limit_comes_back_through_the_artifact_store(
    cluster: Cluster, tmp_path: Path
) -> None:
    store_dir = tmp_path / "artifacts"
    store_dir.mkdir()
    executor = dask_executor(cluster, return_limit=BIG // 2, artifacts=str(store_dir),
                             artifact_prefix="job")  # fmt: skip
    try:
        spec = big_trial(tmp_path)
        result = finish(executor, executor.start(spec))
    finally:
        executor.close()
    assert result.status == RunStatus.COMPLETED
    assert (spec.run_dir / "big.bin").stat().st_size == BIG
    assert store.read_run(spec.run_dir).worker["artifact"] == "job/trials/1"
    assert (store_dir / "job" / "trials" / "1" / "big.bin").exists()


@pytest.mark.cluster
def test_without_a_store_the_records_come_back_and_the_rest_is_said(
    cluster: Cluster, tmp_path: Path
) -> None:
    notes: list[str] = []
    executor = dask_executor(cluster, return_limit=BIG // 2, notify=notes.append)
    try:
        spec = big_trial(tmp_path)
        result = finish(executor, executor.start(spec))
    finally:
        executor.close()
    assert result.status == RunStatus.COMPLETED
    assert not (spec.run_dir / "big.bin").exists()
    assert (spec.run_dir / "seen.json").exists() and (spec.run_dir / store.LOG_FILE).exists()
    assert list((spec.run_dir / "logs").glob("*tfevents*"))
    left = store.read_run(spec.run_dir).worker["left_on_worker"]
    assert left["files"] == 1 and left["bytes"] == BIG
    assert (Path(left["path"]) / "big.bin").exists()  # kept on the worker
    assert notes and "stayed on" in notes[0] and "--artifacts" in notes[0]
