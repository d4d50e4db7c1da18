"""How a model worker is started: bubblewrap, unshare + Landlock, or a plain process.

=============  =====================================================================================
kind           what the worker gets
=============  =====================================================================================
bubblewrap     new user, mount, network, PID, IPC and UTS namespaces (``bwrap --unshare-all``); a
               file system of only the Python environment, the system libraries and the ``studio``
               package, read-only, and a private ``/tmp``; no network; dies with its parent.
unshare        a new network namespace (``unshare --net``, with ``--map-root-user`` when not root)
               and Landlock rules: reads beneath the Python environment and system libraries, writes
               beneath a private temporary folder, no TCP.
none           a plain child process: crashes, hangs and memory bombs stay out of the server, but the
               worker can read and write what the server can. Program formats are refused here
               unless trusted (``trust=True``, ``--trust``, ``STUDIO_TRUST_PROGRAMS=1``).
=============  =====================================================================================

Every kind also gets resource limits (set by the worker on itself before it reads the model):
``RLIMIT_DATA`` (``STUDIO_SANDBOX_MEMORY``, default 4 GiB), no core files, bounded file sizes.
The flags follow Flatpak's use of bubblewrap: ``--unshare-all``, explicit ``--ro-bind``s,
``--die-with-parent``, ``--new-session``.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

from studio.errors import StudioError

KINDS = ("bubblewrap", "unshare", "none")
ISOLATING = ("bubblewrap", "unshare")
CHOICES = ("auto", "bubblewrap", "unshare", "none", "off")
"""Values of ``STUDIO_SANDBOX`` / ``load_model(sandbox=...)``; ``off`` runs the model in this process (trusted)."""

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
"""The folder holding the ``studio`` package (put on the worker's ``PYTHONPATH``)."""
ENV_PASS = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED")
ENV_PASS_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_", "KMP_", "CUDA_", "NVIDIA_", "STUDIO_", "CUBLAS_", "PYTORCH_")


def requested(value: str | None = None) -> str:
    """The sandbox asked for: ``value``, else ``STUDIO_SANDBOX``, else ``auto``."""
    value = (value or os.environ.get("STUDIO_SANDBOX") or "auto").strip().lower()
    if value not in CHOICES:
        raise StudioError(f"sandbox must be one of {', '.join(CHOICES)}, got {value!r}")
    return value


def choose(value: str | None = None) -> str:
    """The launcher kind to use, or ``"off"`` for in-process.

    ``auto`` takes the first that works here of bubblewrap, unshare (with
    Landlock) and none. Naming a kind that does not work here is an error.
    """
    want = requested(value)
    if want == "off":
        return "off"
    available = available_kinds()
    if want == "auto":
        return available[0]
    if want not in available:
        raise StudioError(f"the {want} sandbox is not available on this machine ({why_not(want)}); "
                          f"available: {', '.join(available)}")
    return want


@functools.lru_cache(maxsize=None)
def available_kinds() -> tuple:
    """Launcher kinds that work on this machine, strongest first (``none`` always)."""
    return tuple(k for k in KINDS if not why_not(k))


@functools.lru_cache(maxsize=None)
def why_not(kind: str) -> str:
    """Why ``kind`` cannot be used here, or ``""`` when it can (each probe runs once per process)."""
    if kind == "none":
        return ""
    if sys.platform != "linux":
        return "Linux only"
    if kind == "bubblewrap":
        if not shutil.which("bwrap"):
            return "bwrap is not installed (Debian: apt-get install bubblewrap)"
        probe = bwrap_args("/tmp") + ["--", sys.executable, "-S", "-c", "pass"]
        return _probe(probe, "bwrap could not create namespaces (user namespaces are disabled?)")
    if kind == "unshare":
        from studio.sandbox import landlock

        if not shutil.which("unshare"):
            return "unshare is not installed (util-linux)"
        if landlock.abi_version() < 1:
            return "the kernel has no Landlock"
        return _probe(unshare_args() + [sys.executable, "-S", "-c", "pass"],
                      "unshare could not create a network namespace (user namespaces are disabled?)")
    return f"unknown kind {kind!r}"


def _probe(argv, message) -> str:
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=30, env=worker_env("/tmp"))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{message}: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return f"{message}: {detail[-1][:160] if detail else 'exit ' + str(done.returncode)}"
    return ""


def unshare_args() -> list:
    """``unshare`` with a new network namespace (and a user namespace when not root)."""
    args = ["unshare", "--net"]
    if os.geteuid() != 0:
        args.append("--map-root-user")
    return args


def python_paths() -> list:
    """Folders the worker needs to read to run Python: the interpreter's prefixes and site-packages."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    try:
        paths.update(site.getsitepackages())
        user = site.getusersitepackages()
        if os.path.isdir(user):
            paths.add(user)
    except AttributeError:  # virtualenv's old site module
        pass
    for entry in sys.path:  # .pth-added and editable installs; not the working directory
        if entry and os.path.isdir(entry) and entry != os.getcwd() and "site-packages" in entry:
            paths.add(entry)
    kept = []
    for path in sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)}, key=len):
        if not any(path == k or path.startswith(k + os.sep) for k in kept) and not path.startswith("/usr/"):
            kept.append(path)
    return kept


def gpu_devices() -> list:
    """NVIDIA device nodes present on this host (passed through to the worker)."""
    return sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/renderD*"))


def bwrap_args(tmp: str | None = None) -> list:
    """The bubblewrap command line up to (not including) the worker's own argv.

    Parameters
    ----------
    tmp : str, optional
        Unused by bubblewrap (its ``/tmp`` is a private tmpfs); kept for a common signature.
    """
    # the private /tmp, /proc and /dev first: a later mount hides what was bound beneath it, and the studio or
    # its Python may themselves live under /tmp (a clone in CI, a venv)
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--proc", "/proc", "--dev", "/dev", "--size", str(_tmp_bytes()), "--tmpfs", "/tmp",
            "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for extra in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives"):
        args += ["--ro-bind-try", extra, extra]
    for path in python_paths():
        args += ["--ro-bind", path, path]
    studio_dir = os.path.join(PACKAGE_ROOT, "studio")
    args += ["--ro-bind", studio_dir, studio_dir]
    args += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    gpus = gpu_devices()
    if gpus:
        for dev in gpus:
            args += ["--dev-bind", dev, dev]
        args += ["--ro-bind-try", "/sys", "/sys"]
    args += ["--chdir", "/tmp"]
    return args


def _tmp_bytes() -> int:
    from studio.data.dataset import limit

    return limit("STUDIO_SANDBOX_TMP_BYTES", 1 << 30)


def worker_env(tmp: str) -> dict:
    """The worker's environment: an allow-list of the parent's (no secrets) and private paths."""
    env = {k: v for k, v in os.environ.items() if k in ENV_PASS or k.startswith(ENV_PASS_PREFIXES)}
    env.update(
        PYTHONPATH=PACKAGE_ROOT, PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", HOME=tmp, TMPDIR=tmp,
        USER="studio", XDG_CACHE_HOME=os.path.join(tmp, ".cache"), MPLCONFIGDIR=os.path.join(tmp, ".mpl"),
        TORCH_HOME=os.path.join(tmp, ".torch"), NUMBA_CACHE_DIR=os.path.join(tmp, ".numba"),
    )
    env.setdefault("PATH", "/usr/bin:/bin")
    return env


def command(kind: str, worker_argv: list, tmp: str) -> list:
    """The full argv that starts a worker of ``kind`` running ``worker_argv``."""
    if kind == "bubblewrap":
        return bwrap_args(tmp) + ["--"] + worker_argv
    if kind == "unshare":
        return unshare_args() + worker_argv
    return list(worker_argv)


def describe() -> dict:
    """What this machine offers, for ``python -m studio doctor`` and the Load page."""
    from studio.sandbox import landlock

    chosen = choose() if requested() != "off" else "off"
    return {
        "sandbox": chosen,
        "requested": requested(),
        "available": list(available_kinds()),
        "unavailable": {k: why_not(k) for k in KINDS if why_not(k)},
        "landlock_abi": landlock.abi_version() if sys.platform == "linux" else 0,
        "gpu_devices": gpu_devices(),
        "trust_programs": trust_programs(),
        "memory_bytes": memory_limit(),
        "timeout_seconds": load_timeout(),
    }


def sentence(kind: str) -> str:
    """One sentence a user reads about ``kind``."""
    return {
        "bubblewrap": "Models run in a bubblewrap sandbox: no network, no host files, limited memory.",
        "unshare": "Models run in a sandbox (unshare + Landlock): no network, read-only system files, limited memory.",
        "none": "No sandbox on this machine: models run in a separate process (crashes and hangs are contained), "
                "but program files (TorchScript, .pt2, ONNX) are refused unless the server trusts them.",
        "off": "Models run inside the studio's own process (trusted files only).",
    }[kind]


def trust_programs() -> bool:
    return os.environ.get("STUDIO_TRUST_PROGRAMS", "").strip() in ("1", "true", "yes")


def memory_limit() -> int:
    from studio.data.dataset import limit

    return limit("STUDIO_SANDBOX_MEMORY", 4 * 2**30)


def load_timeout() -> float:
    raw = os.environ.get("STUDIO_SANDBOX_TIMEOUT", "60")
    try:
        return float(raw)
    except ValueError:
        raise StudioError(f"environment variable STUDIO_SANDBOX_TIMEOUT must be seconds, got {raw!r}") from None
