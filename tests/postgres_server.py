"""A PostgreSQL cluster of a test's own, to stop and restart under running processes (never
the machine's): initdb into a temporary folder (as the `postgres` user when we are root),
trust authentication, 127.0.0.1 and a spare port only; stopped by its PID at the end."""

import contextlib
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess

BIN = pathlib.Path(os.environ.get("CONVEYOR_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def missing() -> str | None:
    """Why a cluster cannot be made here, or None."""
    if not (BIN / "initdb").exists():
        return f"no initdb in {BIN} (set CONVEYOR_TEST_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root with no `postgres` user to run initdb as"
    return None


class Cluster:
    """One throwaway cluster under `root`."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.data = root / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        settings = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.start()

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: every session ends."""
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session ends; up again when this returns."""
        self._ctl("restart", "-m", "fast")

    def destroy(self) -> None:
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._ctl("stop", "-m", "immediate")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    def _pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _ctl(self, *args) -> None:
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w", "-t", "60", *args)

    def _run(self, *argv) -> None:
        command = [str(part) for part in argv]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120, start_new_session=True)
