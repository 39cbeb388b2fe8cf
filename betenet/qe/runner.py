"""The one way the package launches a Quantum ESPRESSO executable: :func:`run_qe`.

Every QE program (``pw.x``, ``ph.x``, ``q2r.x``, ``matdyn.x``, ``projwfc.x`` of the material workflow, ``ld1.x``
and the ``pw.x``/``ph.x`` checks of the pseudopotential code) runs in its own process group that is
ended with the Python process that started it, with its input and output in files of its working
directory, and fails with one error type, :class:`QEError`.  Also here: whether QE is installed
(:func:`qe_available`), which BLAS it loads (:func:`qe_blas`) and where the scratch files go
(:func:`scratch_root`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping

from ..config import QEConfig

__all__ = ["EXECUTABLES", "POOLED_EXECUTABLES", "mpi_argv", "QEError", "qe_available", "qe_blas", "run_qe", "scratch_root", "output_tail"]

#: The QE executables the material workflow calls (:func:`qe_available`).
EXECUTABLES = ("pw.x", "ph.x", "q2r.x", "matdyn.x", "projwfc.x")
#: The executables that run on several MPI ranks with k-point pools (``run_qe(mpi_procs=N)``); q2r.x and
#: matdyn.x take a fraction of a second and always run serially.
POOLED_EXECUTABLES = ("pw.x", "ph.x", "projwfc.x")


def mpi_argv(exe: str, n: int, launcher: str | None = None) -> list[str]:
    """``mpirun -np n … exe -npool n``: one k-point pool per rank (the nearly linear parallelisation of pw.x
    and ph.x over k points).  Ranks are not bound to cores (the Dask workers beside them share the node);
    as root, OpenMPI's refusal is lifted.  ``QEError``-free: a missing launcher is reported by :func:`run_qe`."""
    argv = [launcher or "mpirun", "-np", str(int(n)), "--bind-to", "none"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-run-as-root")
    return [*argv, exe, "-npool", str(int(n))]


class QEError(RuntimeError):
    """A QE executable failed: names the executable, the directory and the tail of its output."""

    def __init__(self, executable: str, directory: Path, tail: str, *, returncode: int | None = None, reason: str = "failed"):
        self.executable = executable
        self.directory = Path(directory)
        self.tail = tail
        self.returncode = returncode
        self.reason = reason
        super().__init__(
            f"{executable} {reason} (exit code {returncode}) in {directory}; last lines of its output:\n{tail}"
        )


_BLAS: str | None = None


def qe_blas() -> str:
    """The BLAS library pw.x loads (``ldd``, links resolved), recorded with every step: Debian's QE
    links ``libblas.so.3``, which the alternatives system points at the reference BLAS or, once
    ``libopenblas0-serial`` is installed (``make qe-deps``), at OpenBLAS (ph.x 1.5x faster at B2 AgCd's Γ point; same
    frequencies to 2e-6, data/README).  ``"unknown"`` where ldd or pw.x is missing."""
    global _BLAS
    if _BLAS is None:
        _BLAS = "unknown"
        exe = shutil.which("pw.x")
        try:
            out = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=30).stdout if exe else ""
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            if "libblas" in line and "=>" in line:
                target = line.split("=>")[1].split("(")[0].strip()
                real = os.path.realpath(target)
                kind = "OpenBLAS" if "openblas" in real.lower() else ("reference BLAS" if "/blas/" in real else "BLAS")
                _BLAS = f"{kind} ({real})"
                break
    return _BLAS


def qe_available() -> bool:
    """True when every QE executable the workflow calls is on PATH."""
    return all(shutil.which(x) for x in EXECUTABLES)


def scratch_root(cfg: QEConfig) -> Path:
    """Root of the scratch directories (wavefunctions, charge densities, dvscf files) of the QE runs:
    ``QEConfig.scratch_dir``, else ``$BETENET_SCRATCH``, else ``<tmp>/betenet-qe-scratch``."""
    root = cfg.scratch_dir or os.environ.get("BETENET_SCRATCH") or os.path.join(tempfile.gettempdir(), "betenet-qe-scratch")
    return Path(root)


def output_tail(path: Path, n: int = 30) -> str:
    """The last ``n`` lines of a log (``"<no output>"`` when the file does not exist)."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "<no output>"
    return "\n".join(lines[-n:])


def _pdeathsig_hook() -> Callable[[], None] | None:
    """Linux: a ``preexec_fn`` that makes the child get SIGTERM when the thread that started it dies
    (the driver killed, even by SIGKILL).  Resolved in the parent: nothing is imported after fork."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    sig = int(signal.SIGTERM)
    return lambda: prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG = 1


def _run_own_group(argv: list[str], fin, fout, cwd: Path, env: dict[str, str], timeout_s: float, ferr=subprocess.STDOUT):
    """Run a QE executable in its own process group (a new session) that is ended with the driver.

    The whole group (an ``mpirun`` and its ranks too) is killed on a timeout, on an exception or
    KeyboardInterrupt in the driver, and — through ``PR_SET_PDEATHSIG`` — when the driver itself is
    killed, so no ``ph.x`` keeps writing into the scratch directory of an abandoned run.  Returns the
    finished ``CompletedProcess``-like Popen, or ``None`` on a timeout.
    """
    proc = subprocess.Popen(argv, stdin=fin, stdout=fout, stderr=ferr, cwd=cwd, env=env,
                            start_new_session=True, preexec_fn=_pdeathsig_hook())
    try:
        proc.wait(timeout=timeout_s)
        return proc
    except subprocess.TimeoutExpired:
        return None
    finally:
        if proc.returncode is None or proc.returncode != 0:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group's id is the child's pid
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()


def run_qe(
    executable: str,
    input_text: str,
    cwd: Path,
    name: str,
    *,
    omp_threads: int = 1,
    timeout_s: float = 3600.0,
    check_done: bool = True,
    stdin: bool = True,
    output: str | None = None,
    env: Mapping[str, str] | None = None,
    stderr: str | None = None,
    mpi_procs: int = 1,
) -> float:
    """Run ``executable < name.in > name.out`` in ``cwd``; return the wall time (s).

    ``input_text`` is written to ``cwd/<name>.in`` first (``cwd`` is created when missing); stdout and
    stderr go to one file.  The process runs in its own process group, killed with the caller
    (:func:`_run_own_group`).

    Options (the defaults are those of the material workflow):

    * ``omp_threads``: ``OMP_NUM_THREADS`` of the process (``OMP_STACKSIZE`` is ``64M`` unless set).
    * ``timeout_s``: wall-clock limit; past it the process group is killed and :class:`QEError` raised.
    * ``check_done``: also fail when the output lacks ``JOB DONE`` (``False`` for programs that do not
      print it, such as ``ld1.x``).
    * ``stdin``: ``True`` feeds ``<name>.in`` on standard input; ``False`` passes it as ``-in <name>.in``
      on the command line (standard input then reads ``/dev/null``).
    * ``output``: the output file's name in ``cwd`` (default ``<name>.out``).
    * ``env``: variables set on top of the caller's environment and the OpenMP ones (e.g.
      ``LD_LIBRARY_PATH`` to pin a BLAS); they win over ``omp_threads``.
    * ``stderr``: a file name in ``cwd`` for standard error alone (default: merged into the output; ld1.x's
      output is kept free of the compiler's floating-point notes this way).
    * ``mpi_procs``: above 1, ``mpirun`` with that many ranks and as many k-point pools (:func:`mpi_argv`;
      :data:`POOLED_EXECUTABLES` only), the input passed as ``-in``.

    Raises :class:`QEError` (executable, directory, output tail) on a non-zero exit code, a timeout,
    a missing executable or (``check_done``) an output without ``JOB DONE``.
    """
    cwd = Path(cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    inp, out = cwd / f"{name}.in", cwd / (output or f"{name}.out")
    inp.write_text(input_text)
    exe = shutil.which(executable)
    if exe is None:
        raise QEError(executable, cwd, "executable not found on PATH (install Quantum ESPRESSO: `make qe-deps`)", reason="not found")
    launcher = None
    if mpi_procs > 1:
        if executable not in POOLED_EXECUTABLES:
            raise ValueError(f"run_qe: mpi_procs={mpi_procs} for {executable}; only {POOLED_EXECUTABLES} run on MPI ranks")
        launcher = shutil.which("mpirun")
        if launcher is None:
            raise QEError(executable, cwd, f"mpi_procs={mpi_procs} but no `mpirun` on PATH (install openmpi-bin, or run with "
                          "QEConfig.mpi_procs = 1)", reason="not found")
        stdin = False
    full_env = dict(os.environ, OMP_NUM_THREADS=str(omp_threads), OMP_STACKSIZE=os.environ.get("OMP_STACKSIZE", "64M"))
    full_env.update(env or {})
    t0 = time.perf_counter()
    with (inp.open() if stdin else open(os.devnull)) as fin, out.open("w") as fout, \
            (open(cwd / stderr, "w") if stderr else contextlib.nullcontext(subprocess.STDOUT)) as ferr:
        argv = [exe] if stdin else [exe, "-in", inp.name]
        if launcher is not None:
            argv = [*mpi_argv(exe, mpi_procs, launcher), "-in", inp.name]
        proc = _run_own_group(argv, fin, fout, cwd, full_env, timeout_s, ferr)
    if proc is None:
        raise QEError(executable, cwd, output_tail(out), reason=f"timed out after {timeout_s:.0f} s")
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise QEError(executable, cwd, output_tail(out), returncode=proc.returncode)
    if check_done and "JOB DONE" not in out.read_text(errors="replace"):
        raise QEError(executable, cwd, output_tail(out), returncode=proc.returncode, reason="ended without 'JOB DONE'")
    return wall
