"""One rule for every name that reaches the file system.

Run ids, scenario, task, variant, model and suite names are written by users (a suite file, a
record copied from elsewhere) and end up as file or folder names: ``runs/<run_id>/``,
``requests/<scenario>.parquet``, ``samples/<task>.jsonl``, ``baselines/<model>__<suite>__...``.
:func:`path_component` turns any of them into one safe path component:

* a name that is already safe (letters, digits, ``. _ - @ # + =``, not starting with a dot, at
  most :data:`MAX_COMPONENT_CHARS` characters) is used as it is, so ordinary names keep their
  ordinary files;
* anything else (``../x``, ``/abs``, NUL, spaces, Unicode, 5,000 characters) becomes a slug of
  its safe characters plus ``-`` and the first 10 hex digits of the name's SHA-256, so two
  different names never share a file by accident (``a b`` and ``a/b`` differ).

:func:`inside` then checks that a path built from a root and such components, once resolved
(symlinks followed), still lies inside the root, as Python's ``tarfile`` "data" filter does
for archive members. The display name stays as the user wrote it, in the record.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

MAX_COMPONENT_CHARS = 120
"""Longest component kept as written (file systems allow 255 bytes; suffixes and temp names need room)."""

_SAFE = re.compile(r"[A-Za-z0-9_@#+=-][A-Za-z0-9._@#+=-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_CHARS = 10


class UnsafePathError(ValueError):
    """A path that would leave the folder it must stay in; the message names both."""


def is_safe_component(name: str, max_chars: int = MAX_COMPONENT_CHARS) -> bool:
    """True when `name` can be a file name as it is (see the module docstring)."""
    return len(name) <= max_chars and _SAFE.fullmatch(name) is not None


def name_hash(name: str) -> str:
    """The short hash that keeps slugs of different names apart (hex, :data:`_HASH_CHARS` digits)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


def path_component(name: str, max_chars: int = MAX_COMPONENT_CHARS) -> str:
    """`name` as one safe file or folder name: itself when safe, else ``<slug>-<hash>``."""
    if is_safe_component(name, max_chars):
        return name
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE_RUN.sub("-", ascii_).strip("-.")
    slug = slug[: max(1, max_chars - _HASH_CHARS - 1)].rstrip("-.")
    return f"{slug}-{name_hash(name)}" if slug else f"x-{name_hash(name)}"


def inside(root: Path, path: Path) -> Path:
    """`path` resolved, after checking it stays inside `root` (also resolved); else UnsafePathError."""
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(path))
    if target != base and not target.is_relative_to(base):
        raise UnsafePathError(f"{path} resolves to {target}, outside {base}: refused")
    return target


def child(root: Path, *names: str, suffix: str = "") -> Path:
    """``root/<component>/.../<component><suffix>``, each name through :func:`path_component`,
    checked to stay inside `root`. The path returned is the unresolved join (for messages)."""
    if not names:
        raise ValueError("child() needs at least one name")
    parts = [path_component(n) for n in names]
    parts[-1] = parts[-1] + suffix
    path = Path(root).joinpath(*parts)
    inside(root, path)
    return path


def check_name(kind: str, name: str, max_chars: int = 200) -> str:
    """Refuse a name no file, terminal or record should carry: empty, NUL or other control
    characters, or longer than `max_chars`. Returns the name; the message names kind and problem."""
    if not name or not name.strip():
        raise ValueError(f"{kind} name is empty")
    if len(name) > max_chars:
        raise ValueError(f"{kind} name is {len(name)} characters long; at most {max_chars}")
    bad = sorted({f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in ("Cc", "Cs")})
    if bad:
        raise ValueError(f"{kind} name {name[:40]!r} has control characters ({', '.join(bad[:5])})")
    return name
