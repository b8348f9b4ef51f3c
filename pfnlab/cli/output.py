"""Where the command's output goes: the terminal (with ASCII fallbacks when its encoding
cannot show a symbol), the width of tables, and output files checked before any work.

Every output path is checked writable before the search starts (a search can take
minutes; a typo in ``--output`` must not lose it), and a write that still fails later (a
full disk) is one line saying what was not saved, never a traceback.

``-`` as an output path is standard output, as for other Unix tools (so is a path that
names the file standard output already is: ``/dev/stdout``, or the file ``>`` redirected
it to). A command that writes a report there prints its text report on standard error
instead, so that standard output holds the one document (``pfnlab check ... -o - | jq``).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import shutil
import stat
import sys
import tempfile
import unicodedata
from typing import TextIO

from rich.console import Console

from pfnlab.cli.errors import UsageError

#: what a symbol becomes where the output encoding cannot show it
ASCII = {
    "\u2718": "x", "\u2717": "x", "\u2714": "ok", "\u2713": "ok",   # check marks
    "\u2014": "-", "\u2013": "-", "\u2026": "...", "\u22ef": "...",  # dashes, ellipses
    "\u2192": "->", "\u2190": "<-", "\u21d2": "=>", "\u2194": "<->",  # arrows
    "\u2264": "<=", "\u2265": ">=", "\u2260": "!=", "\u2248": "~", "\u00b1": "+/-",
    "\u00d7": "x", "\u00b5": "u", "\u00b0": "deg", "\u2022": "*", "\u00b7": ".",
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',      # quotes
    "\u2502": "|", "\u2500": "-", "\u2501": "-", "\u2503": "|", "\u2578": "-",  # lines
}

ERRORS = "pfnlab-ascii"


def _fallback(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = []
    for ch in err.object[err.start:err.end]:
        rep = ASCII.get(ch)
        if rep is None:
            rep = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"
        out.append(rep)
    return "".join(out), err.end


codecs.register_error(ERRORS, _fallback)


def _needs_fallback(stream: TextIO) -> bool:
    enc = getattr(stream, "encoding", None) or "ascii"
    try:
        "".join(ASCII).encode(enc)
    except (UnicodeEncodeError, LookupError):
        return True
    return False


def setup_streams() -> None:
    """Make standard output and error print every symbol, as ASCII where their encoding
    cannot show it (``LC_ALL=C`` on an old system, ``PYTHONIOENCODING=ascii``)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None or not hasattr(stream, "reconfigure"):
            continue
        if _needs_fallback(stream):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors=ERRORS)


def ascii_only() -> bool:
    """Whether standard output falls back to ASCII (then tables use ASCII lines too)."""
    return _needs_fallback(sys.stdout)


def width() -> int:
    """Columns for a table: the terminal's, ``COLUMNS`` when set, else 100 (a file)."""
    if "COLUMNS" in os.environ:
        try:
            return max(40, int(os.environ["COLUMNS"]))
        except ValueError:
            pass
    if sys.stdout.isatty():
        return max(40, shutil.get_terminal_size((100, 24)).columns)
    return 100


def stdout_console() -> Console:
    """A rich console on standard output, as wide as :func:`width`."""
    return Console(width=width(), highlight=False, safe_box=True)


# --------------------------------------------------------------------------- files
#: the output path that means standard output
STDOUT = "-"


def is_stdout(path: str | None) -> bool:
    """Whether the output path ``path`` is standard output: ``-``, or the file standard
    output already is (``/dev/stdout``, or the file it was redirected to: writing that
    file beside the text report would mix the two, or replace it under the text)."""
    if path is None:
        return False
    if path == STDOUT:
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # no such file; no real stdout
        return False


def check_writable(path: str, option: str) -> None:
    """Refuse ``path`` now unless the command will be able to write it later.

    An existing file is opened for append (nothing is truncated or changed); a new one
    needs an existing, writable directory. A directory is refused.
    """
    if not path:
        raise UsageError(f"{option}: an empty file name")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory; give a file name in it, e.g. "
                         f"{os.path.join(path, 'report' + _suffix(option))}")
    if os.path.lexists(path):
        try:
            with open(path, "a"):
                pass
        except OSError as e:
            raise UsageError(f"{option} {path}: cannot write to it: "
                             f"{e.strerror or e}") from None
        return
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        what = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise UsageError(f"{option} {path}: the directory {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the directory {parent} is not writable")


def _suffix(option: str) -> str:
    return ".html" if "html" in option else ".json"


def check_outputs(outputs: dict[str, str | None], models: list[str],
                  stdout: str | None = None) -> None:
    """Refuse, before any work, output paths that would lose something: a path given to
    two options (the second write would replace the first; standard output, ``-``,
    included), standard output when ``stdout`` (say ``--format json``) already writes
    there, a model file being checked (the report would overwrite the model); then
    :func:`check_writable` for each file."""
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        if is_stdout(path):
            other = seen.get(STDOUT) or stdout
            if other:
                raise UsageError(f"{other} and {option} {path} both write to standard "
                                 f"output: give {option} a file name, e.g. "
                                 f"report{_suffix(option)}")
            seen[STDOUT] = f"{option} {path}"
            continue
        real = os.path.realpath(path)
        for model in models:
            if real == os.path.realpath(model):
                stem = os.path.splitext(path)[0]
                raise UsageError(f"{option} {path}: that is the model file being checked; "
                                 f"give the report a name of its own, e.g. {stem}"
                                 f"{_suffix(option)}")
        if real in seen:
            raise UsageError(f"{seen[real]} and {option} both name {path}: the second would "
                             "replace the first; give each its own file")
        seen[real] = option
        check_writable(path, option)


def write_file(path: str, text: str, option: str, what: str) -> str | None:
    """Write ``text`` to ``path``; on failure the one-line reason (``what`` was not saved).

    Standard output (:func:`is_stdout`) is written as it is (a reader that went away
    raises ``BrokenPipeError``, which the command's guard handles). A regular file (or a
    new one) is written to a temporary file beside it that replaces it only once written
    in full: a write that fails (a full disk) leaves an existing file as it was and no
    partial file behind; a replaced file keeps its permissions, and a symbolic link stays
    a link (its target is replaced). Anything else that exists (a device, a pipe) is
    written in place, never replaced."""
    if is_stdout(path):
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            return (f"{option} {path}: writing to standard output failed: "
                    f"{e.strerror or e}; {what} was not saved")
        return None
    real = os.path.realpath(path)
    if os.path.exists(real) and not os.path.isfile(real):
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as e:
            return f"{option} {path}: writing failed: {e.strerror or e}; {what} was not saved"
        return None
    parent = os.path.dirname(real) or "."
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{os.path.basename(real)}.",
                                   suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except OSError as e:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return f"{option} {path}: writing failed: {e.strerror or e}; {what} was not saved"
    return None
