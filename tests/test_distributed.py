"""One study shared by several `flagrun tune` workers through the real PostgreSQL server.

Workers are real processes; one is SIGKILLed in the middle of a trial and the
survivors must fail that trial and run its parameters again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import optuna
import pytest

from flagrun import distributed, storage
from tests.helpers import (
    PG_URL,
    Env,
    flagrun,
    make_project,
    start_flagrun,
    trials_json,
    tuning_yaml,
    wait_for,
)

TRAIN = textwrap.dedent(
    """
    import time
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5), flag_numeric("sleep", 0.4))
    for epoch in range(3):
        time.sleep(FLAGS.sleep)
        log_metrics({"val_acc": 1.0 - (FLAGS.x - 0.3) ** 2 - 0.1 / (epoch + 1)}, step=epoch)
    with open("model.txt", "w") as f:
        f.write(f"x={FLAGS.x}")
    """
)


@pytest.fixture
def study_name(pg: str):
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=name, storage=storage.open_database(pg))


def tuning_project(folder: Path, max_trials: int, parallel: int) -> Path:
    tuning = tuning_yaml(maxTrials=max_trials, maxParallelTrials=parallel)
    return make_project(folder, TRAIN, tuning)


def worker_env(pg: str, artifacts: Path | None, heartbeat: float = 0.3) -> dict[str, str]:
    """What a worker's environment adds: the shared storage, a quick heartbeat, the store."""
    env = {"FLAGRUN_STORAGE": pg, distributed.HEARTBEAT_ENV: str(heartbeat)}
    if artifacts is not None:
        env["FLAGRUN_ARTIFACTS"] = str(artifacts)
    return env


def start_worker(project: Path, study: str, env: Env, *extra: str) -> subprocess.Popen:
    return start_flagrun(
        project,
        "tune",
        "--config",
        "tuning.yml",
        "--study",
        study,
        "--progress",
        "plain",
        *extra,
        env=env,
    )


def tune(project: Path, env: Env, study: str, *extra: str):
    """One worker, run to its end."""
    return flagrun(project, "tune", "--config", "tuning.yml", "--study", study, *extra, env=env)


def load(pg: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage.open_database(pg))


def running_trial_of(
    study: optuna.Study, pid: int, project: Path
) -> optuna.trial.FrozenTrial | None:
    """A trial that worker ``pid`` runs and that has written its first metrics."""
    for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.system_attrs.get(distributed.WORKER_ATTR, "")
        run_dir = project / "runs" / study.study_name / "trials" / str(trial.number + 1)
        if worker.endswith(f":{pid}") and list(run_dir.rglob("events.out.tfevents.*")):
            return trial
    return None


def test_three_workers_share_12_trials_and_survive_a_sigkilled_worker(
    pg: str, study_name: str, tmp_path: Path
) -> None:
    machine_a = tuning_project(tmp_path / "machine-a", max_trials=12, parallel=1)
    machine_b = tuning_project(tmp_path / "machine-b", max_trials=12, parallel=1)
    artifacts = tmp_path / "shared-artifacts"
    env = worker_env(pg, artifacts)
    # Two workers on one machine (same folder), one on another.
    workers = [
        start_worker(machine_a, study_name, env),
        start_worker(machine_a, study_name, env),
        start_worker(machine_b, study_name, env),
    ]
    victim = workers[2]
    study = wait_for(lambda: _study_if_exists(pg, study_name), what="the study")
    doomed = wait_for(
        lambda: running_trial_of(study, victim.pid, machine_b), what="a trial of the victim worker"
    )
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    outputs = [worker.communicate(timeout=180)[0] for worker in workers[:2]]
    for worker, output in zip(workers[:2], outputs, strict=True):
        assert worker.returncode == 0, output

    trials = load(pg, study_name).get_trials()
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 12
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    killed = next(t for t in trials if t.number == doomed.number)
    assert killed.state == optuna.trial.TrialState.FAIL
    assert killed.user_attrs["interrupted"] is True
    retry = [t for t in trials if t.user_attrs.get("retryOf") == doomed.number + 1]
    assert len(retry) == 1
    assert retry[0].state == optuna.trial.TrialState.COMPLETE
    assert retry[0].params == killed.params
    assert any("stopped beating" in output for output in outputs)

    # A fourth process, anywhere, sees every worker's trials.
    elsewhere = tmp_path / "laptop"
    elsewhere.mkdir()
    rows = trials_json(elsewhere, "--study", study_name, env=env)["trials"]
    states = [row["state"] for row in rows]
    assert states.count("COMPLETE") == 12
    assert states[:12] == ["COMPLETE"] * 12
    assert {row["trialId"] for row in rows} == {t.number + 1 for t in trials if t.user_attrs}
    values = [row["objectiveValue"] for row in rows[:12]]
    assert values == sorted(values, reverse=True)

    # ...and collects the best trial's files from the artifact store.
    env_no_artifacts = {**env, "FLAGRUN_ARTIFACTS": None}
    got = flagrun(
        elsewhere, "collect", "--study", study_name, "--dest", "best", env=env_no_artifacts
    )
    assert got.returncode == 0, got.stderr
    best_id = rows[0]["trialId"]
    best_dir = elsewhere / "best" / f"trial-{best_id}"
    best_x = rows[0]["hyperparameters"]["x"]
    assert (best_dir / "model.txt").read_text() == f"x={best_x}"
    uploaded = json.loads((best_dir / "run.json").read_text())
    assert uploaded["trial"]["state"] == "COMPLETE"  # uploaded once the folder was final
    assert list((best_dir / "logs").rglob("events.out.tfevents.*"))
    assert f"x: {best_x}" in (elsewhere / "best" / "best_flags.yml").read_text()


def _study_if_exists(pg: str, name: str) -> optuna.Study | None:
    try:
        return load(pg, name)
    except KeyError:
        return None


def test_max_trials_is_a_global_budget_no_worker_overshoots(
    pg: str, study_name: str, tmp_path: Path
) -> None:
    project = tuning_project(tmp_path / "p", max_trials=5, parallel=2)
    # No worker dies here: a slow heartbeat keeps a worker stalled by a busy machine from
    # being swept as dead (its trial would then count as interrupted and run again).
    env = worker_env(pg, None, heartbeat=5.0)
    workers = [start_worker(project, study_name, env, "sleep=0") for _ in range(3)]
    for worker in workers:
        output = worker.communicate(timeout=180)[0]
        assert worker.returncode == 0, output
    trials = load(pg, study_name).get_trials()
    counted = [t for t in trials if not t.user_attrs.get("surplus")]
    assert [t.state for t in counted] == [optuna.trial.TrialState.COMPLETE] * 5
    assert len(trials_json(project, "--study", study_name, env=env)["trials"]) == 5
    # This machine's own folder holds this machine's trials, named by their shared ids.
    local = sorted(int(p.name) for p in (project / "runs" / study_name / "trials").iterdir())
    assert local == [t.number + 1 for t in counted]


def test_the_password_is_never_printed_or_stored(pg: str, study_name: str, tmp_path: Path) -> None:
    secret = "s3cr3t-pw"
    # Trust authentication ignores the password: the URL works and carries a secret.
    url = pg.replace("postgres@", f"postgres:{secret}@")
    project = tuning_project(tmp_path / "p", max_trials=1, parallel=1)
    env = {**worker_env(url, None), "FLAGRUN_STORAGE": ""}
    done = flagrun(
        project,
        "tune",
        "--config",
        "tuning.yml",
        "--storage",
        url,
        "--study",
        study_name,
        "--progress",
        "plain",
        "sleep=0",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    listed = flagrun(project, "trials", "--storage", url, "--study", study_name, env=env)
    assert listed.returncode == 0, listed.stderr
    for text in (done.stdout, done.stderr, listed.stdout, listed.stderr):
        assert secret not in text
    for path in (project / "runs").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    record = json.loads((project / "runs" / study_name / "job.json").read_text())
    assert record["storage"] == pg.replace("postgres@", "postgres:***@")


def test_a_worker_rejoins_its_study_with_resume(pg: str, study_name: str, tmp_path: Path) -> None:
    project = tuning_project(tmp_path / "p", max_trials=2, parallel=1)
    env = worker_env(pg, None)
    first = tune(project, env, study_name, "--max-trials", "1", "--progress", "quiet", "sleep=0")
    assert first.returncode == 0, first.stderr
    again = flagrun(project, "tune", "--resume", study_name, "--progress", "quiet", env=env)
    assert again.returncode == 0, again.stderr
    complete = load(pg, study_name).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 1  # the study's budget is 1: the rejoining worker has nothing to do


@pytest.mark.parametrize(
    ("args", "env_url", "code", "expected"),
    [
        (
            ["--storage", "postgresql://postgres:hunter22@127.0.0.1:5999/test", "--study", "s"],
            "",
            1,
            "cannot open the study storage postgresql://postgres:***@127.0.0.1:5999/test",
        ),
        (["--storage", "not-a-url", "--study", "s"], "", 2, "is not a database URL"),
        (["--storage", "nosuchdb://x/y", "--study", "s"], "", 2, "not one SQLAlchemy understands"),
        (["--study", "s"], "", 2, "needs both --storage URL (or FLAGRUN_STORAGE) and --study"),
        (["--study", "no/slash"], PG_URL, 2, "must be letters, digits"),
    ],
)
def test_storage_mistakes_get_one_clear_line(
    tmp_path: Path, args: list[str], env_url: str, code: int, expected: str
) -> None:
    project = tuning_project(tmp_path / "p", max_trials=1, parallel=1)
    done = flagrun(
        project, "tune", "--config", "tuning.yml", *args, env={"FLAGRUN_STORAGE": env_url}
    )
    assert done.returncode == code, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter22" not in done.stderr + done.stdout
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())


def test_trials_of_an_unknown_study_says_which_exist(pg: str, tmp_path: Path) -> None:
    done = flagrun(tmp_path, "trials", "--study", "nope-x", env={"FLAGRUN_STORAGE": pg})
    assert done.returncode == 2
    assert "no study 'nope-x'" in done.stderr


def test_a_worker_with_another_search_space_is_refused(
    pg: str, study_name: str, tmp_path: Path
) -> None:
    first = tuning_project(tmp_path / "a", max_trials=1, parallel=1)
    env = worker_env(pg, None)
    done = tune(first, env, study_name, "--progress", "quiet", "sleep=0")
    assert done.returncode == 0, done.stderr
    other = tuning_project(tmp_path / "b", max_trials=1, parallel=1)
    yaml_text = json.loads(tuning_yaml(maxTrials=1, maxParallelTrials=1))
    yaml_text["trainingInput"]["hyperparameters"]["params"][0]["maxValue"] = 0.5
    (other / "tuning.yml").write_text(json.dumps(yaml_text))
    refused = tune(other, env, study_name)
    assert refused.returncode == 2
    assert f"study {study_name!r} searches other params than your YAML" in refused.stderr
    assert not (other / "runs" / study_name).exists()
    jobs = flagrun(first, "jobs", env=env)
    assert study_name in jobs.stdout


def client_ports(pid: int, server_port: int = 5432) -> list[int]:
    """The local ports of the TCP connections process ``pid`` holds to ``server_port``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            for line in list(handle)[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                    ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


def terminate_backends(pg: str, worker_pid: int, seconds: float) -> int:
    """Kill the database connections of one worker (``pg_terminate_backend`` on the backends
    whose client port is one of the worker's) again and again for ``seconds``, as a
    restarting server or a proxy cutting sockets would; how many were killed."""
    import psycopg

    killed = 0
    deadline = time.monotonic() + seconds
    with psycopg.connect(pg, autocommit=True) as admin:
        while time.monotonic() < deadline:
            ports = client_ports(worker_pid)
            if ports:
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE client_port = ANY(%s)",
                    (ports,),
                ).fetchall()
                killed += sum(1 for (done,) in rows if done)
            time.sleep(0.02)
    return killed


def test_a_worker_whose_connections_are_dropped_reconnects_and_finishes(
    pg: str, study_name: str, tmp_path: Path
) -> None:
    project = tuning_project(tmp_path, max_trials=6, parallel=2)
    worker = start_worker(project, study_name, worker_env(pg, None))
    wait_for(lambda: any(project.glob("runs/*/trials/2")), 60, "the first trials to start")
    killed = terminate_backends(pg, worker.pid, seconds=4)
    output, _ = worker.communicate(timeout=180)
    assert killed > 0
    assert worker.returncode == 0, output
    assert "Traceback" not in output
    trials = trials_json(project, "--study", study_name, env={"FLAGRUN_STORAGE": pg})["trials"]
    states = [trial["state"] for trial in trials]
    assert states.count("COMPLETE") == 6 and "RUNNING" not in states
