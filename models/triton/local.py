"""A real ``tritonserver`` on 127.0.0.1, from the ``.venv-triton`` environment, for tests and
developers.

The ``nvidia-pytriton`` wheel bundles Triton Inference Server 2.51 with only the python
backend; it pins numpy < 2, so it lives in its own environment, ``.venv-triton`` beside the
project (``.ci/install`` makes it; ``AHMER_TRITON_ENV`` points elsewhere). :class:`LocalTriton`
launches that binary directly, which needs what the wheel's own launcher would otherwise set
up (found by trying it on this project's machines):

- a ``--backend-directory`` holding ``python/libtriton_python.so``,
  ``triton_python_backend_utils.py`` and a *symlink* to the stub built for the environment's
  Python minor version;
- the environment's ``bin`` first on ``PATH`` (the stub finds its Python through ``python3``)
  and the Python installation's own ``lib`` first on ``LD_LIBRARY_PATH`` (the stub loads the
  first ``libpython3.X.so`` the loader finds, which must be the one that Python was built as).

It serves a repository written by :func:`ahmer.models.triton.repository.write_repository` with
``python_backend=True``. Ports are free ones on 127.0.0.1 unless given; :meth:`restart` keeps
them, so clients reconnect to the same URL. With ``tls_cert`` and ``tls_key`` (PEM files) the
gRPC endpoint speaks TLS only (``--grpc-use-ssl``), as a Triton behind an internal CA would;
HTTP, which the readiness wait polls, and metrics stay plain. Triton and its python stubs
run in a process group of their own that :meth:`stop` ends (SIGTERM, then SIGKILL), also at
interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ahmer.preprocessing.errors import Internal

__all__ = [
    "ENV_VARIABLE",
    "ENV_FOLDER",
    "LocalTriton",
    "TritonEnv",
    "TritonLocalError",
    "find_triton_env",
]

ENV_VARIABLE = "AHMER_TRITON_ENV"
ENV_FOLDER = ".venv-triton"
_LAUNCHES = itertools.count()  # numbers each launch of this process (shared-memory names)
_INSTALL_HINT = "run .ci/install (it creates .venv-triton with nvidia-pytriton)"


_ERROR_LINE = re.compile(r"E\d{4} ")
_HARMLESS = ("CudaDriverHelper", "CUDA", "NVML", "DCGM")


class TritonLocalError(Internal, RuntimeError):
    """The local Triton could not be found, started or reached; the message says why."""


class TritonEnv:
    """The paths of a ``.venv-triton`` environment that :class:`LocalTriton` needs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        found = sorted(self.root.glob("lib/python3.*/site-packages/pytriton/tritonserver"))
        if not found:
            raise TritonLocalError(
                f"{self.root} holds no nvidia-pytriton (no lib/python3.*/site-packages/pytriton/"
                f"tritonserver): {_INSTALL_HINT}"
            )
        self.server_dir = found[-1]
        self.python_minor = found[-1].parents[2].name.removeprefix("python")  # "3.11"
        self.binary = self.server_dir / "bin" / "tritonserver"
        self.python_backend = self.server_dir / "backends" / "python"
        self.stub = (
            self.server_dir
            / "python_backend_stubs"
            / self.python_minor
            / "triton_python_backend_stub"
        )
        for path in (self.binary, self.python_backend / "libtriton_python.so", self.stub):
            if not path.is_file():
                raise TritonLocalError(f"{path} is missing from {self.root}: {_INSTALL_HINT}")
        self.bin = self.root / "bin"
        self.python_lib = self._python_lib()

    def _python_lib(self) -> Path | None:
        """The ``lib`` folder of the Python installation the environment was made from (its
        ``pyvenv.cfg`` ``home`` is that installation's ``bin``), when it holds libpython."""
        try:
            lines = (self.root / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() == "home":
                lib = Path(value.strip()).parent / "lib"
                if any(lib.glob(f"libpython{self.python_minor}*.so*")):
                    return lib
        return None


def find_triton_env() -> TritonEnv:
    """The environment named by ``AHMER_TRITON_ENV``, else the nearest ``.venv-triton`` in a
    folder above this package or beside the running interpreter's environment."""
    named = os.environ.get(ENV_VARIABLE)
    if named:
        if not Path(named).is_dir():
            raise TritonLocalError(f"{ENV_VARIABLE}={named} is not a folder: {_INSTALL_HINT}")
        return TritonEnv(Path(named))
    starts = [Path(__file__).resolve().parent, Path(sys.prefix).absolute()]
    for start in starts:
        for folder in (start, *start.parents):
            if (folder / ENV_FOLDER).is_dir():
                return TritonEnv(folder / ENV_FOLDER)
    raise TritonLocalError(f"no {ENV_FOLDER} found above {starts[0]}: {_INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalTriton:
    """A ``tritonserver`` process serving ``repo`` on 127.0.0.1 (gRPC, HTTP and metrics).

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Ports 0 pick free ones
    at the first start; later starts reuse them.
    """

    def __init__(
        self,
        repo: Path,
        env: Path | TritonEnv | None = None,
        grpc_port: int = 0,
        http_port: int = 0,
        metrics_port: int = 0,
        exit_timeout: int = 5,
        tls_cert: Path | str | None = None,
        tls_key: Path | str | None = None,
    ) -> None:
        self.repo = Path(repo).absolute()
        if (tls_cert is None) != (tls_key is None):
            raise TritonLocalError("TLS needs both tls_cert and tls_key (PEM files), or neither")
        self.tls_cert = Path(tls_cert).absolute() if tls_cert is not None else None
        self.tls_key = Path(tls_key).absolute() if tls_key is not None else None
        self._env_arg = env
        self.grpc_port, self.http_port, self.metrics_port = grpc_port, http_port, metrics_port
        self._auto_ports = not (grpc_port or http_port or metrics_port)
        self.exit_timeout = int(exit_timeout)
        self._proc: subprocess.Popen[bytes] | None = None
        self._work: Path | None = None
        self._log: Path | None = None

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The gRPC address, ``127.0.0.1:PORT`` (what ``--triton-url`` takes)."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def tls(self) -> bool:
        """Whether the gRPC endpoint speaks TLS (clients need ``--triton-tls``)."""
        return self.tls_cert is not None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        """Triton's log file (kept until :meth:`close`)."""
        return self._log

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> LocalTriton:
        """Start Triton and wait until ``/v2/health/ready`` answers 200 (every model loaded).

        Raises :class:`TritonLocalError` with the tail of Triton's log when it exits or is not
        ready within ``timeout`` seconds."""
        if self.running():
            return self
        if not self.repo.is_dir():
            raise TritonLocalError(f"no model repository at {self.repo}")
        for what, path in (("TLS certificate", self.tls_cert), ("TLS key", self.tls_key)):
            if path is not None and not path.is_file():
                raise TritonLocalError(f"{what} {path} is not a file")
        env = self._env()
        tries = 3
        for attempt in range(tries):
            if self._auto_ports and (attempt or not self.grpc_port):
                self.grpc_port, self.http_port, self.metrics_port = (
                    _free_port(),
                    _free_port(),
                    _free_port(),
                )
            self._check_ports()
            self._launch(env)
            try:
                self._wait_ready(timeout)
                return self
            except TritonLocalError as exc:
                tail = self.log_tail()
                self.stop()
                busy = self._auto_ports and "already in use" in tail
                if attempt + 1 < tries and (busy or "lock_exception" in tail):
                    continue  # other ports / a start that aborted in its python backend
                raise TritonLocalError(f"{exc}; Triton said:\n{self.log_errors()}") from None
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 15.0) -> None:
        """End Triton and its python stubs: SIGTERM to the group, SIGKILL after ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # stubs left in the group, if any
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def restart(self, timeout: float = 120.0) -> LocalTriton:
        """Stop and start again on the same ports."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop Triton and remove its temporary folder (backend directory and log)."""
        self.stop()
        atexit.unregister(self._kill_quietly)
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = self._log = None

    def __enter__(self) -> LocalTriton:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self) -> int:
        """Block until Triton exits; its exit code."""
        if self._proc is None:
            raise TritonLocalError("Triton is not running")
        return self._proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        if self._log is None or not self._log.is_file():
            return ""
        text = self._log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def log_errors(self, tail: int = 3) -> str:
        """Triton's error lines (the harmless CUDA ones of a machine without a GPU left out)
        and the last ``tail`` lines of its log: what a failed start is explained by."""
        if self._log is None or not self._log.is_file():
            return ""
        lines = self._log.read_text(encoding="utf-8", errors="replace").splitlines()
        errors = [
            line if len(line) < 600 else line[:600] + " ..."
            for line in lines
            if _ERROR_LINE.match(line) and not any(h in line for h in _HARMLESS)
        ]
        return "\n".join([*errors[-10:], *lines[-tail:]])

    # -- helpers -------------------------------------------------------------------------

    def _env(self) -> TritonEnv:
        arg = self._env_arg
        if isinstance(arg, TritonEnv):
            return arg
        if arg is not None:
            if not Path(arg).is_dir():
                raise TritonLocalError(f"{arg} is not a folder: {_INSTALL_HINT}")
            return TritonEnv(Path(arg))
        return find_triton_env()

    def _backend_dir(self, env: TritonEnv) -> Path:
        if self._work is None:
            self._work = Path(tempfile.mkdtemp(prefix="ahmer-triton-"))
        python = self._work / "backends" / "python"
        if not python.is_dir():
            python.mkdir(parents=True)
            for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
                shutil.copyfile(env.python_backend / name, python / name)
            (python / "triton_python_backend_stub").symlink_to(env.stub)
        return python.parent

    def _check_ports(self) -> None:
        """Refuse ports something already listens on: its answers would pass for Triton's."""
        for what, port in (
            ("gRPC", self.grpc_port),
            ("HTTP", self.http_port),
            ("metrics", self.metrics_port),
        ):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Triton binds
                try:
                    s.bind(("127.0.0.1", port))
                except OSError as exc:
                    raise TritonLocalError(
                        f"{what} port {port} on 127.0.0.1 is in use ({exc.strerror}): stop what "
                        "listens there or choose other ports"
                    ) from None

    def _launch(self, env: TritonEnv) -> None:
        backends = self._backend_dir(env)
        assert self._work is not None
        self._log = self._work / "triton.log"
        run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        run_env["PATH"] = os.pathsep.join([str(env.bin), run_env.get("PATH", "")])
        run_env["VIRTUAL_ENV"] = str(env.root)
        if env.python_lib is not None:
            ld = [str(env.python_lib), run_env.get("LD_LIBRARY_PATH", "")]
            run_env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in ld if p)
        cmd = [
            str(env.binary),
            f"--model-repository={self.repo}",
            f"--backend-directory={backends}",
            "--model-control-mode=none",
            "--allow-http=true",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--allow-grpc=true",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            *self._tls_flags(),
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={self.exit_timeout}",
            "--log-verbose=0",
            # the python backend's shared-memory regions are named from this prefix: two
            # Tritons on one machine with the same prefix collide (a start that aborts with
            # boost::interprocess::lock_exception), so each launch gets its own
            f"--backend-config=python,shm-region-prefix-name=ahmer{os.getpid()}x{next(_LAUNCHES)}_",
        ]
        atexit.register(self._kill_quietly)  # never leave a Triton behind
        with open(self._log, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=run_env,
                    cwd=self._work,
                    start_new_session=True,  # its own process group: stop() ends the stubs too
                )
            except OSError as exc:
                raise TritonLocalError(f"cannot run {env.binary}: {exc}") from exc

    def _tls_flags(self) -> list[str]:
        """Triton 2.51's flags for a TLS-only gRPC endpoint (server authentication only)."""
        if self.tls_cert is None:
            return []
        return [
            "--grpc-use-ssl=true",
            f"--grpc-server-cert={self.tls_cert}",
            f"--grpc-server-key={self.tls_key}",
        ]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.http_url}/v2/health/ready"
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise TritonLocalError(f"tritonserver exited with code {code} while starting")
            try:
                with urllib.request.urlopen(url, timeout=1.0) as reply:
                    if reply.status == 200 and self._proc.poll() is None:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TritonLocalError(f"Triton was not ready within {timeout:.0f} s")
            time.sleep(0.2)

    def _kill_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
