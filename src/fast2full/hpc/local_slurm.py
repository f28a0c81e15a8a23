"""A single-node SLURM on this machine (Debian's slurm-wlm 22.05 + munge), run as root.

Used by the SLURM profile test (``tests/test_slurm_profile.py``) and by
``workflow/slurm/{start,stop}-local-slurm.sh``.  The cluster is one node (``localhost``) in one
default partition, with no accounting database: Snakemake's SLURM executor must therefore query job
states with ``squeue`` (``slurm-status-command: squeue``), which only works while finished jobs are
still known to slurmctld, i.e. for ``MinJobAge`` seconds after they end.  Finished jobs are also
appended to a ``jobcomp/filetxt`` log, a permanent record of what ran through SLURM.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from fast2full.common import Fast2FullError

log = logging.getLogger(__name__)

#: srun inside job steps reads only the compiled-in default location, so the config goes there.
SLURM_CONF = Path("/etc/slurm/slurm.conf")
#: Snakemake's squeue status query needs finished jobs to stay visible well beyond its first status
#: check (40 s) and its back-off (up to 180 s); the executor plugin recommends >= 120 s.
MIN_JOB_AGE_S = 600
#: memory left to the OS and the daemons when RealMemory is derived from /proc/meminfo
OS_RESERVED_MB = 1024
#: memory per CPU for jobs that do not ask (Snakemake always passes --mem from mem_mb)
DEF_MEM_PER_CPU_MB = 1000
PARTITION = "debug"
NODE = "localhost"
DAEMONS = ("slurmctld", "slurmd")
REQUIRED_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")


@dataclass(frozen=True)
class LocalSlurmLayout:
    """Where the daemons keep their state, logs and pid files."""

    conf: Path = SLURM_CONF
    state_dir: Path = Path("/var/spool/slurmctld")
    spool_dir: Path = Path("/var/spool/slurmd")
    log_dir: Path = Path("/var/log/slurm")
    run_dir: Path = Path("/run/fast2full-slurm")
    munge_socket_dir: Path = Path("/run/munge")

    @property
    def jobcomp_log(self) -> Path:
        return self.log_dir / "jobcomp.log"

    def pidfile(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.pid"


@dataclass
class LocalSlurm:
    """What :func:`start` started (and so what :func:`stop` stops); ``reused`` if it was running."""

    layout: LocalSlurmLayout
    started: list[str] = field(default_factory=list)
    reused: bool = False


CONF_MARKER = "# Written by fast2full.hpc.local_slurm"


def missing_requirements(layout: LocalSlurmLayout | None = None) -> str | None:
    """Why a local SLURM cannot be started here, or None if it can."""
    layout = layout or LocalSlurmLayout()
    if os.name != "posix" or os.geteuid() != 0:
        return "a local SLURM needs root (munged, slurmctld and slurmd are started as root)"
    try:
        foreign = layout.conf.is_file() and not layout.conf.read_text().startswith(CONF_MARKER)
    except OSError:
        foreign = True
    if foreign:
        return (
            f"{layout.conf} exists and was not written by fast2full: a real SLURM is configured here, not touching it"
        )
    missing = [b for b in REQUIRED_BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        return (
            f"SLURM binaries not found: {', '.join(missing)} "
            "(install Debian's slurm-wlm and munge: workflow/slurm/install-local-slurm.sh)"
        )
    return None


def machine_resources() -> tuple[int, int]:
    """(CPUs, RealMemory in MB) of this machine, leaving ``OS_RESERVED_MB`` to the system."""
    cpus = len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                total_mb = int(line.split()[1]) // 1024
                break
        else:  # pragma: no cover - every Linux kernel has MemTotal
            raise Fast2FullError("/proc/meminfo: no MemTotal line")
    return cpus, max(total_mb - OS_RESERVED_MB, 512)


def slurm_conf_text(
    cpus: int, real_memory_mb: int, layout: LocalSlurmLayout = LocalSlurmLayout(), min_job_age_s: int = MIN_JOB_AGE_S
) -> str:
    """A complete slurm.conf for one node, one partition, no accounting storage."""
    if min_job_age_s < 300:
        raise Fast2FullError(
            f"MinJobAge={min_job_age_s}: must be >= 300 s, else Snakemake never "
            "sees jobs end (no accounting database, squeue is the status source)"
        )
    settings = {
        "ClusterName": "fast2full",
        "SlurmctldHost": NODE,
        "SlurmUser": "root",
        "SlurmdUser": "root",
        "AuthType": "auth/munge",
        "CredType": "cred/munge",
        "MpiDefault": "none",
        # no cgroup hierarchy in a container: track processes through /proc
        "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none",
        "ReturnToService": 2,
        "SlurmctldPidFile": layout.pidfile("slurmctld"),
        "SlurmdPidFile": layout.pidfile("slurmd"),
        "StateSaveLocation": layout.state_dir,
        "SlurmdSpoolDir": layout.spool_dir,
        "SlurmctldLogFile": layout.log_dir / "slurmctld.log",
        "SlurmdLogFile": layout.log_dir / "slurmd.log",
        "SchedulerType": "sched/backfill",
        # cores and memory are consumable: mem_mb requests are enforced at scheduling
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_Core_Memory",
        # a job that asks for no memory must not take the whole node
        "DefMemPerCPU": DEF_MEM_PER_CPU_MB,
        "AccountingStorageType": "accounting_storage/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "JobCompType": "jobcomp/filetxt",
        "JobCompLoc": layout.jobcomp_log,
        "MinJobAge": min_job_age_s,
        "InactiveLimit": 0,
        "KillWait": 30,
        "Waittime": 0,
        "SlurmctldTimeout": 120,
        "SlurmdTimeout": 300,
    }
    lines = [f"{CONF_MARKER}: a throw-away single-node SLURM."]
    lines += [f"{k}={v}" for k, v in settings.items()]
    lines.append(f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={real_memory_mb} State=UNKNOWN")
    lines.append(f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def node_state() -> str | None:
    """The node's state as sinfo reports it ('idle', 'mix', 'down*', ...), or None if unreachable."""
    try:
        res = _run(["sinfo", "--noheader", "--nodes", NODE, "--format", "%T"], timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = res.stdout.strip()
    return out.splitlines()[0] if res.returncode == 0 and out else None


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def _start_munge(layout: LocalSlurmLayout) -> bool:
    """Start munged (as the munge user) unless one answers already; True if started here."""
    if _run(["munge", "-n"]).returncode == 0:
        return False
    layout.munge_socket_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(layout.munge_socket_dir, "munge", "munge")
    res = _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"])
    if res.returncode != 0:
        raise Fast2FullError(f"munged failed to start: {res.stderr.strip() or res.stdout.strip()}")
    return True


def start(
    layout: LocalSlurmLayout = LocalSlurmLayout(),
    timeout_s: float = 60.0,
    cpus: int | None = None,
    real_memory_mb: int | None = None,
) -> LocalSlurm:
    """Write slurm.conf, start munged, slurmctld and slurmd; return once the node is idle.

    A cluster that already answers with an idle node is reused and left alone by :func:`stop`.
    Raises :class:`Fast2FullError` naming the failing daemon and its log file.
    """
    reason = missing_requirements(layout)
    if reason:
        raise Fast2FullError(reason)
    state = node_state()
    if state is not None and state.rstrip("*") in ("idle", "mixed", "allocated"):
        log.info("local SLURM already running (node %s: %s): reusing it", NODE, state)
        return LocalSlurm(layout=layout, reused=True)

    have_cpus, have_mem = machine_resources()
    conf = slurm_conf_text(cpus or have_cpus, real_memory_mb or have_mem, layout)
    for d in (layout.conf.parent, layout.state_dir, layout.spool_dir, layout.log_dir, layout.run_dir):
        d.mkdir(parents=True, exist_ok=True)
    layout.conf.write_text(conf)
    log.info("wrote %s", layout.conf)

    started = LocalSlurm(layout=layout)
    try:
        if _start_munge(layout):
            started.started.append("munged")
        for daemon, args in (("slurmctld", ["-c"]), ("slurmd", ["-N", NODE])):
            if _pid_alive(layout.pidfile(daemon)):
                continue
            res = _run([f"/usr/sbin/{daemon}", *args])
            if res.returncode != 0:
                raise Fast2FullError(
                    f"{daemon} failed to start ({res.stderr.strip()}); see {layout.log_dir / (daemon + '.log')}"
                )
            started.started.append(daemon)
        deadline = time.monotonic() + timeout_s
        while True:
            state = node_state()
            if state == "idle":
                break
            if state and state.startswith("down") and time.monotonic() > deadline - timeout_s / 2:
                _run(["scontrol", "update", f"NodeName={NODE}", "State=RESUME"])
            if time.monotonic() > deadline:
                raise Fast2FullError(
                    f"local SLURM node {NODE} not idle after {timeout_s:.0f} s "
                    f"(state: {state}); see {layout.log_dir}/slurmctld.log and slurmd.log"
                )
            time.sleep(0.5)
    except BaseException:
        stop(started)
        raise
    log.info("local SLURM up: node %s idle, partition %s", NODE, PARTITION)
    return started


def _stop_pidfile(pidfile: Path, timeout_s: float = 15.0) -> None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def stop(cluster: LocalSlurm) -> None:
    """Stop the daemons that :func:`start` started (slurmd, slurmctld, munged), in that order."""
    if cluster.reused:
        return
    layout = cluster.layout
    for daemon in ("slurmd", "slurmctld"):
        if daemon in cluster.started:
            _stop_pidfile(layout.pidfile(daemon))
    if "munged" in cluster.started:
        _stop_pidfile(Path("/run/munge/munged.pid"))
    log.info("local SLURM stopped (%s)", ", ".join(reversed(cluster.started)) or "nothing to stop")


def stop_all(layout: LocalSlurmLayout = LocalSlurmLayout()) -> None:
    """Stop whatever local daemons run from this layout's pid files (for the stop script)."""
    stop(LocalSlurm(layout=layout, started=["munged", *DAEMONS]))


def main(argv: list[str] | None = None) -> int:
    """``python -m fast2full.hpc.local_slurm start|stop|conf`` (used by workflow/slurm/*.sh)."""
    import argparse
    import sys

    from fast2full.common import setup_logging

    parser = argparse.ArgumentParser(prog="python -m fast2full.hpc.local_slurm", description=__doc__.splitlines()[0])
    parser.add_argument(
        "action",
        choices=["start", "stop", "conf"],
        help="start the daemons (idempotent), stop them, or print the slurm.conf",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for an idle node")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        if args.action == "start":
            start(timeout_s=args.timeout)
        elif args.action == "stop":
            stop_all()
        else:
            sys.stdout.write(slurm_conf_text(*machine_resources()))
    except Fast2FullError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
