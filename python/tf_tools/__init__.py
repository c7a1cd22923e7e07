"""Run the tf-tools binaries from Python on in-memory graphs.

    import tf_tools
    frozen = tf_tools.run("tf-freeze", "model/")
    small = tf_tools.run("tf-quant", "int8", input=tf_tools.run("tf-fold", input=frozen))

``input`` may be ``bytes`` or any protobuf message with ``SerializeToString`` (TensorFlow's
``GraphDef``, for one). The result is the tool's stdout as ``bytes``; parse it with
``tf.compat.v1.GraphDef.FromString``. A tool that fails raises :class:`ToolError` carrying its
one-line error and exit code. TensorFlow is not needed by this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = ["ToolError", "TOOLS", "run", "which"]

# The tools this wheel installs (tf-run and tf-diff link TensorFlow and are not in it).
TOOLS = (
    "tf-convert",
    "tf-inspect",
    "tf-freeze",
    "tf-strip",
    "tf-fold",
    "tf-quant",
    "tf-prune",
    "tf-xla-check",
    "tf-transform",
    "tf-ckpt",
)


class ToolError(RuntimeError):
    """A tool exited with a code other than 0 (or 1 where findings are allowed)."""

    def __init__(self, tool: str, returncode: int, message: str):
        # The message is the tool's own line ("tf-strip: error: ..."), which names the tool.
        super().__init__(message or f"{tool} exited with {returncode}")
        self.tool = tool
        self.returncode = returncode
        self.message = message


def _candidate_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("TF_TOOLS_BIN")
    if env:
        dirs.append(Path(env))
    # The scripts directory of the environment this module is installed in: the wheel puts the
    # binaries there, whether or not that directory is on PATH (a notebook kernel often is not).
    here = Path(__file__).resolve()
    for scheme_dir in (sysconfig.get_path("scripts"), Path(sys.executable).parent):
        dirs.append(Path(scheme_dir))
    for parent in here.parents:
        if parent.name in ("site-packages", "dist-packages"):
            root = parent.parent.parent.parent  # <prefix>/lib/pythonX.Y/site-packages
            dirs.append(root / ("Scripts" if os.name == "nt" else "bin"))
            break
    return dirs


def which(tool: str) -> str:
    """The path of a tool binary: $TF_TOOLS_BIN, the install's scripts directory, then PATH."""
    exe = tool + (".exe" if os.name == "nt" else "")
    for d in _candidate_dirs():
        p = d / exe
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    found = shutil.which(tool)
    if found:
        return found
    raise FileNotFoundError(f"{tool}: not found (install the tf-tools wheel or set TF_TOOLS_BIN)")


def run(tool: str, *args: str, input=None, ok_codes=(0,), timeout: float | None = None) -> bytes:
    """Run ``tool`` with ``args``; feed ``input`` (bytes or a protobuf message) on stdin.

    Returns stdout as bytes. Raises :class:`ToolError` with the tool's one-line error when the
    exit code is not in ``ok_codes`` (pass ``ok_codes=(0, 1)`` for tools whose exit 1 means
    findings, such as ``tf-xla-check``).
    """
    if tool not in TOOLS and not tool.startswith("tf-"):
        raise ValueError(f"unknown tool {tool!r}; one of: {', '.join(TOOLS)}")
    if input is not None and not isinstance(input, (bytes, bytearray, memoryview)):
        serialize = getattr(input, "SerializeToString", None)
        if serialize is None:
            raise TypeError("input must be bytes or a protobuf message (e.g. a GraphDef)")
        input = serialize()
    proc = subprocess.run(
        [which(tool), *map(str, args)],
        input=bytes(input) if input is not None else None,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    if proc.returncode not in ok_codes:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ToolError(tool, proc.returncode, lines[-1] if lines else "")
    return proc.stdout
