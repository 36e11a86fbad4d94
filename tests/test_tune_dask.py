"""Tuning jobs on a real Dask cluster: `dask scheduler` and `dask worker` processes on this
machine, each worker in a folder of its own, the driver (`flagrun tune --cluster`) in the
test's project folder. Faults are real too: SIGKILL of a worker, of the driver."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from tests.dask_cluster import Cluster, Netns, cluster_env, pid_alive  # noqa: E402

pytestmark = pytest.mark.cluster  # every test here tunes on (or next to) a real Dask cluster

TRAIN = textwrap.dedent(
    """
    import os, time
    from flagrun import flags, flag_integer, flag_numeric, flag_string, log_metrics

    FLAGS = flags(
        flag_numeric("x", 0.5),
        flag_integer("epochs", 3),
        flag_numeric("sleep", 0.1),
        flag_string("pids", ""),
    )
    if FLAGS.pids:
        with open(FLAGS.pids, "a") as f:
            f.write(f"{os.getpid()}\\n")
    with open("out.txt", "w") as f:
        f.write(repr(FLAGS.x))
    for epoch in range(FLAGS.epochs):
        time.sleep(FLAGS.sleep)
        log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2 - 0.1 / (epoch + 1)}, step=epoch)
    """
)

PRUNE_TRAIN = textwrap.dedent(
    """
    import os, time
    from flagrun import flags, flag_numeric, flag_string, log_metrics

    FLAGS = flags(flag_numeric("x", 0.3), flag_string("pids", ""))
    with open(FLAGS.pids, "a") as f:
        f.write(f"{os.getpid()}\\n")
    hopeless = FLAGS.x > 0.5
    for epoch in range(40):
        log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2 - 0.1 / (epoch + 1)}, step=epoch)
        if hopeless:
            time.sleep(0.25)
    """
)


def tuning_yaml(**overrides: object) -> str:
    hyper = {
        "goal": "MAXIMIZE",
        "hyperparameterMetricTag": "val_acc",
        "maxTrials": 10,
        "maxParallelTrials": 2,
        "params": [{"parameterName": "x", "type": "DOUBLE", "minValue": 0.0, "maxValue": 1.0}],
    }
    hyper.update(overrides)
    return json.dumps({"trainingInput": {"hyperparameters": hyper}})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two workers of one thread each, each in its own folder."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), cluster_env())
    try:
        yield cluster.start({"w1": {}, "w2": {}})
    finally:
        cluster.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    driver = tmp_path / "driver"
    driver.mkdir()
    (driver / "train.py").write_text(TRAIN)
    (driver / "tuning.yml").write_text(tuning_yaml())
    return driver


def flagrun(project: Path, *args: str, timeout: float = 120, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "flagrun", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=driver_env(**env),
    )


def start_flagrun(project: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flagrun", *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=driver_env(**env),
    )


def driver_env(**extra: str) -> dict[str, str]:
    # The workers share this machine's disk: make them run trials on their own disk all the
    # same, as on separate machines (the shared-filesystem case has its own test).
    return cluster_env(FLAGRUN_CLUSTER_SHARED="no", **extra)


def trials_json(project: Path, job: str = "latest") -> list[dict]:
    done = flagrun(project, "trials", job, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["trials"]


def only_job(project: Path) -> Path:
    jobs = [path for path in (project / "runs").iterdir() if (path / "job.json").exists()]
    assert len(jobs) == 1
    return jobs[0]


def index_rows(project: Path) -> dict:
    """The trials index's last row of each trial (with its reason)."""
    from flagrun import jobstore

    return {row.trial_id: row for row in jobstore.read_trials(only_job(project))}


def pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def wait_until(check, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def worker_trials(cluster: Cluster, name: str) -> list[Path]:
    """The trial folders on a worker's disk (while the trials run)."""
    return list(cluster.workers[name].folder.glob("*/*/flagrun/jobs/*/trials/*"))


def busy_worker(cluster: Cluster) -> tuple[str, str] | None:
    """A worker running a trial of its own (its name, the trial's id), or None."""
    for name in cluster.workers:
        trials = worker_trials(cluster, name)
        if trials:
            return name, trials[0].name
    return None


@pytest.mark.slow
def test_ten_trials_two_in_flight_come_back_complete_with_their_files(
    cluster: Cluster, project: Path
) -> None:
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress", "plain",
                   "--cluster", cluster.address)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"trials run on the Dask cluster at {cluster.address}" in done.stdout

    trials = trials_json(project)
    assert sorted(t["trialId"] for t in trials) == list(range(1, 11))
    assert all(t["state"] == "COMPLETE" for t in trials)
    job_dir = only_job(project)
    workers = set()
    for trial in trials:
        run_dir = job_dir / "trials" / str(trial["trialId"])
        x = trial["hyperparameters"]["x"]
        assert float((run_dir / "out.txt").read_text()) == x  # the folder came back whole
        assert trial["objectiveValue"] == pytest.approx(1.0 - (x - 0.3) ** 2 - 0.1 / 3)
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "COMPLETED" and record["trial"]["state"] == "COMPLETE"
        assert record["script"] == str(job_dir / "source" / "train.py")  # the driver's paths
        assert str(cluster.root) in record["worker"]["run_dir"]
        workers.add(record["worker"]["address"])
        assert list((run_dir / "logs").glob("*tfevents*"))
    assert len(workers) == 2  # both workers ran trials
    assert json.loads((job_dir / "job.json").read_text())["cluster"] == cluster.address
    for name in ("w1", "w2"):
        assert worker_trials(cluster, name) == []  # nothing left behind on the workers

    # The job's folder behaves as a local job's.
    best = flagrun(project, "collect", "--best", "--dest", "best")
    assert best.returncode == 0, best.stderr
    assert (project / "best" / "best_flags.yml").exists()
    assert flagrun(project, "report").returncode == 0


@pytest.mark.slow
def test_a_worker_killed_mid_job_still_ends_with_exactly_max_trials_complete(
    tmp_path: Path, project: Path
) -> None:
    cluster = Cluster(tmp_path / "cluster", cluster_env())
    pid_file = tmp_path / "pids.txt"
    try:
        cluster.start({"w1": {}, "w2": {}, "w3": {}})
        tuner = start_flagrun(project, "tune", "train.py", "--config", "tuning.yml",
                              "--progress", "plain", "--cluster", cluster.address,
                              "sleep=0.4", f"pids={pid_file}")  # fmt: skip
        wait_until(lambda: busy_worker(cluster), what="a trial running on a worker")
        victim, running = busy_worker(cluster)
        time.sleep(0.3)
        cluster.kill_worker(victim)
        output, _ = tuner.communicate(timeout=120)
    finally:
        cluster.stop()
    assert tuner.returncode == 0, output
    trials = trials_json(project)
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert len(complete) == 10
    ids = [t["trialId"] for t in trials]
    assert len(ids) == len(set(ids))
    lost = [t for t in trials if t["state"] == "FAILED"]
    assert int(running) in [t["trialId"] for t in lost]  # the one running on the victim
    assert "was lost" in index_rows(project)[lost[0]["trialId"]].reason
    assert lost[0]["hyperparameters"]["x"] in {t["hyperparameters"]["x"] for t in complete}
    record = json.loads((only_job(project) / "trials" / running / "run.json").read_text())
    assert record["status"] == "FAILED" and "was lost" in record["reason"]
    assert all(not pid_alive(pid) for pid in pids(pid_file))  # no trial outlived its worker


@pytest.mark.slow
def test_early_stopping_stops_a_trial_on_its_worker(cluster: Cluster, project: Path) -> None:
    (project / "prune.py").write_text(PRUNE_TRAIN)
    (project / "tuning.yml").write_text(
        tuning_yaml(
            maxTrials=5,
            maxParallelTrials=1,
            algorithm="GRID_SEARCH",
            enableTrialEarlyStopping=True,
            earlyStopping={"pruner": "median", "n_startup_trials": 4, "n_warmup_steps": 0},
            params=[
                {
                    "parameterName": "x",
                    "type": "DISCRETE",
                    "discreteValues": [0.3, 0.31, 0.32, 0.33, 0.9],
                }
            ],
        )
    )
    pid_file = project / "pids.txt"
    done = flagrun(project, "tune", "prune.py", "--config", "tuning.yml", "--progress", "plain",
                   "--cluster", cluster.address, f"pids={pid_file}")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    trials = trials_json(project)
    assert [t["state"] for t in trials] == ["COMPLETE"] * 4 + ["PRUNED"]
    pruned = trials[-1]
    assert pruned["trainingStep"] < 39  # stopped long before its 40 epochs
    record = json.loads((only_job(project) / pruned["runDir"] / "run.json").read_text())
    assert record["status"] == "PRUNED" and record["reason"].startswith("pruned at step")
    assert record["worker"]["address"].startswith("tcp://127.0.0.1:")
    assert all(not pid_alive(pid) for pid in pids(pid_file))


@pytest.mark.slow
def test_sigkill_of_the_driver_stops_its_trials_and_resume_finishes_the_job(
    cluster: Cluster, project: Path
) -> None:
    (project / "tuning.yml").write_text(tuning_yaml(maxTrials=4))
    pid_file = project / "pids.txt"
    tuner = start_flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress",
                          "plain", "--cluster", cluster.address, "sleep=0.5", "epochs=4",
                          f"pids={pid_file}")  # fmt: skip
    wait_until(lambda: len(pids(pid_file)) == 2, what="two trials running")
    tuner.kill()
    tuner.communicate(timeout=30)
    # The scheduler lets go of the dead driver's tasks; each task stops its trial.
    wait_until(lambda: not any(pid_alive(pid) for pid in pids(pid_file)), timeout=15,
               what="the trials to stop")  # fmt: skip
    job = json.loads((only_job(project) / "job.json").read_text())
    assert job["cluster"] == cluster.address

    # No --cluster: the job reconnects to the scheduler it ran on.
    done = flagrun(project, "tune", "--resume", "latest", "--progress", "plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"trials run on the Dask cluster at {cluster.address}" in done.stdout
    trials = trials_json(project)
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    interrupted = [t for t in trials if t["state"] == "FAILED"]
    assert len(complete) == 4 and len(interrupted) == 2
    retried = {t["hyperparameters"]["x"] for t in complete}
    assert all(t["hyperparameters"]["x"] in retried for t in interrupted)
    assert all(not pid_alive(pid) for pid in pids(pid_file))


@pytest.mark.slow
def test_ctrl_c_of_the_driver_stops_the_trials_and_brings_their_folders_back(
    cluster: Cluster, project: Path
) -> None:
    pid_file = project / "pids.txt"
    tuner = start_flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--progress",
                          "plain", "--cluster", cluster.address, "sleep=2", "epochs=5",
                          f"pids={pid_file}")  # fmt: skip
    wait_until(lambda: len(pids(pid_file)) == 2, what="two trials running")
    time.sleep(0.5)
    tuner.send_signal(signal.SIGINT)
    output, _ = tuner.communicate(timeout=60)
    assert tuner.returncode == 130, output
    assert all(not pid_alive(pid) for pid in pids(pid_file))
    job_dir = only_job(project)
    assert json.loads((job_dir / "job.json").read_text())["state"] == "INTERRUPTED"
    trials = trials_json(project)
    assert len(trials) == 2 and all(t["state"] == "FAILED" for t in trials)
    for trial in trials:  # stopped on the worker, then sent back
        record = json.loads((job_dir / trial["runDir"] / "run.json").read_text())
        assert record["status"] == "KILLED" and record["signal"] == "SIGTERM"
        assert (job_dir / trial["runDir"] / "out.txt").exists()


@pytest.mark.slow
def test_losing_the_scheduler_stops_the_job_resumably(tmp_path: Path, project: Path) -> None:
    cluster = Cluster(tmp_path / "cluster", cluster_env())
    pid_file = tmp_path / "pids.txt"
    try:
        cluster.start({"w1": {}, "w2": {}})
        tuner = start_flagrun(project, "tune", "train.py", "--config", "tuning.yml",
                              "--progress", "plain", "--cluster", cluster.address,
                              "sleep=1", "epochs=10", f"pids={pid_file}")  # fmt: skip
        wait_until(lambda: len(pids(pid_file)) == 2, what="two trials running")
        assert cluster.scheduler is not None
        cluster.scheduler.kill()
        output, _ = tuner.communicate(timeout=60)
        # The workers close without their scheduler, and their trials with them.
        wait_until(lambda: not any(pid_alive(pid) for pid in pids(pid_file)), timeout=30,
                   what="the trials to stop")  # fmt: skip
    finally:
        cluster.stop()
    assert tuner.returncode == 1, output
    assert f"error: lost the Dask scheduler at {cluster.address}" in output
    assert "Traceback" not in output
    job = json.loads((only_job(project) / "job.json").read_text())
    assert job["state"] == "INTERRUPTED"
    rows = index_rows(project)
    assert [row.state for row in rows.values()] == ["FAILED", "FAILED"]


def test_trials_run_in_the_drivers_folder_when_the_workers_see_it(
    cluster: Cluster, project: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flagrun", "tune", "train.py", "--config", "tuning.yml",
         "--max-trials", "2", "--progress", "plain", "--cluster", cluster.address],
        cwd=project, capture_output=True, text=True, timeout=120,
        env=cluster_env(),  # FLAGRUN_CLUSTER_SHARED left to auto
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job_dir = only_job(project)
    for trial_id in (1, 2):
        run_dir = job_dir / "trials" / str(trial_id)
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "COMPLETED"
        assert record["worker"]["run_dir"] == str(run_dir)  # ran right there: nothing copied
        assert not (run_dir / ".flagrun-probe").exists()


def test_an_unreachable_scheduler_is_one_line_and_creates_nothing(project: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml",
                   "--cluster", f"tcp://127.0.0.1:{port}", FLAGRUN_CLUSTER_TIMEOUT="1")  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(
        f"flagrun tune: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"
    ), done.stderr
    assert len(lines) == 2 and lines[1].strip().startswith("hint:")
    assert not (project / "runs").exists()


def test_the_cluster_also_comes_from_the_environment(project: Path) -> None:
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml",
                   FLAGRUN_CLUSTER="tcp://127.0.0.1:1", FLAGRUN_CLUSTER_TIMEOUT="0.5")  # fmt: skip
    assert done.returncode == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in done.stderr


def test_gpus_by_index_on_a_cluster_is_a_usage_error(project: Path) -> None:
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml",
                   "--cluster", "tcp://127.0.0.1:1", "--gpus", "0,1")  # fmt: skip
    assert done.returncode == 2
    assert "--resources GPU=N" in done.stderr and "Traceback" not in done.stderr
    assert not (project / "runs").exists()


NO_FLAGRUN_WORKER = textwrap.dedent(
    """
    # A dask worker whose Python has no flagrun: neither importable nor installed.
    import importlib.abc, importlib.metadata as metadata, sys

    class NoFlagrun(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "flagrun" or name.startswith("flagrun."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoFlagrun())
    _version = metadata.version

    def version(name):
        if name == "flagrun":
            raise metadata.PackageNotFoundError(name)
        return _version(name)

    metadata.version = version
    from distributed.cli.dask_worker import main

    sys.argv[0] = "dask-worker"
    main()
    """
)


def test_a_worker_without_flagrun_is_one_line_and_creates_nothing(
    tmp_path: Path, project: Path
) -> None:
    launcher = tmp_path / "no_flagrun_worker.py"
    launcher.write_text(NO_FLAGRUN_WORKER)
    cluster = Cluster(tmp_path / "cluster", cluster_env())
    try:
        cluster.start({})
        worker = cluster.add_worker("bare", launcher=[str(launcher)])
        cluster.wait_for(1)
        done = flagrun(project, "tune", "train.py", "--config", "tuning.yml",
                       "--cluster", cluster.address)  # fmt: skip
    finally:
        cluster.stop()
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(
        "flagrun tune: error: flagrun is not installed on Dask worker tcp://"
    )
    assert len(lines) == 2 and 'pip install "flagrun[dask]"' in lines[1]
    assert not (project / "runs").exists()
    assert worker.proc.returncode is not None


def test_the_runner_cli_and_tuner_do_not_import_dask() -> None:
    code = (
        "import sys, flagrun, flagrun.runner, flagrun.tuner, flagrun.executors, flagrun.cli\n"
        "flagrun.cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=cluster_env())  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_python_api_takes_a_client(
    cluster: Cluster, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client

    from flagrun import tune

    monkeypatch.setenv("FLAGRUN_CLUSTER_SHARED", "no")
    with Client(cluster.address, set_as_default=False) as client:
        result = tune(project / "train.py", project / "tuning.yml", max_trials=2,
                      runs_dir=project / "runs", progress="quiet", cluster=client)  # fmt: skip
        assert client.status == "running"  # the user's client stays theirs
    assert result.state == "COMPLETED" and result.counts["COMPLETE"] == 2
    assert float((result.job_dir / "trials" / "1" / "out.txt").read_text()) >= 0


def test_a_resumed_job_whose_scheduler_is_gone_says_how_to_go_on(
    cluster: Cluster, project: Path
) -> None:
    done = flagrun(project, "tune", "train.py", "--config", "tuning.yml", "--max-trials", "1",
                   "--cluster", cluster.address)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job = only_job(project)
    record = json.loads((job / "job.json").read_text())
    record["cluster"] = "tcp://127.0.0.1:1"  # a scheduler that is gone now
    (job / "job.json").write_text(json.dumps(record))
    done = flagrun(project, "tune", "--resume", "latest", "--max-trials", "2",
                   FLAGRUN_CLUSTER_TIMEOUT="0.5")  # fmt: skip
    assert done.returncode == 1
    assert "(job " in done.stderr and "--cluster none" in done.stderr
    # --cluster none: the job goes on here, and says so in job.json.
    done = flagrun(project, "tune", "--resume", "latest", "--max-trials", "2",
                   "--cluster", "none", "--progress", "plain")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Dask" not in done.stdout
    assert json.loads((job / "job.json").read_text())["cluster"] is None
    assert [t["state"] for t in trials_json(project)] == ["COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_scheduler_and_workers_on_addresses_of_their_own(tmp_path: Path, project: Path) -> None:
    """Three "machines" in network namespaces: the scheduler on one, a worker on each of
    the others; the driver reaches them over a bridge from this namespace."""
    if not Netns.available():
        pytest.skip("needs root and `ip netns`")
    with Netns(3) as lab:
        cluster = Cluster(tmp_path / "cluster", cluster_env(), host=lab.address(1),
                          netns=lab.names[0])  # fmt: skip
        try:
            cluster.start({})
            for n in (2, 3):
                cluster.add_worker(f"w{n}", host=lab.address(n), netns=lab.names[n - 1])
            cluster.wait_for(2)
            assert cluster.address.startswith(f"tcp://{lab.address(1)}:")
            done = flagrun(project, "tune", "train.py", "--config", "tuning.yml",
                           "--max-trials", "4", "--progress", "plain",
                           "--cluster", cluster.address)  # fmt: skip
        finally:
            cluster.stop()
    assert done.returncode == 0, done.stdout + done.stderr + cluster.logs()
    job_dir = only_job(project)
    hosts = set()
    for trial_id in range(1, 5):
        record = json.loads((job_dir / "trials" / str(trial_id) / "run.json").read_text())
        assert record["status"] == "COMPLETED"
        hosts.add(record["worker"]["address"].split("//")[1].rsplit(":", 1)[0])
        assert (job_dir / "trials" / str(trial_id) / "out.txt").exists()
    assert hosts == {lab.address(2), lab.address(3)}
