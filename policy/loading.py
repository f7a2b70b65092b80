"""Reading a policy file: TOML syntax, then keys and types, then cross-checks, digest and index.

The result is a ``CompiledPolicy``, the only form the engine decides with.

Every failure becomes a ``PolicyFileError`` (whatever the parser raised: a file nested deeply enough to
exhaust the parser's recursion too) whose lines name the file, the key path and the fix, e.g.::

    policy/default.toml: job_types.legal_review.min_data_class: 'secret' is not a data class; known: ...
    policy/default.toml: job_types.coding_analysis.long_runing: unknown key 'long_runing'; known keys: ...

Usage::

    policy = load_policy()                      # the shipped policy/default.toml
    policy = load_policy("/etc/lanes/policy.toml")
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from policy.compiled import CompiledPolicy
from policy.errors import PolicyFileError
from policy.models import Policy

__all__ = ["MAX_POLICY_BYTES", "default_policy_path", "load_policy", "load_policy_text"]

MAX_POLICY_BYTES = 1024 * 1024
"""The largest policy file read (1 MiB). The shipped policy is about 12 KB; a file far larger is a
mistake (a log, a data file) or an attack on the parser, refused before it is parsed."""


def default_policy_path() -> Path:
    """Return the path of the policy shipped with the package, ``policy/default.toml``."""
    return Path(__file__).parent / "default.toml"


def load_policy(path: str | os.PathLike[str] | None = None) -> CompiledPolicy:
    """Load, validate, cross-check and compile a policy file.

    Args:
        path: The TOML file; ``None`` means the shipped ``policy/default.toml``.

    Returns:
        The compiled policy, with ``source`` set to the path as given and ``digest`` computed.

    Raises:
        PolicyFileError: The file cannot be read or is not a valid policy; ``errors`` lists every problem.
    """
    file = Path(path) if path is not None else default_policy_path()
    source = os.fspath(path) if path is not None else os.fspath(file)
    try:
        text = _read(file, source).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PolicyFileError(
            [f"{source}: cannot read policy file ({why}); pass the path of an existing UTF-8 TOML file"],
            source=source,
        ) from exc
    return load_policy_text(text, source=source)


def _read(file: Path, source: str) -> bytes:
    """The file's bytes: a regular file of at most :data:`MAX_POLICY_BYTES`, read without blocking.

    A FIFO named as the policy would block ``open`` and every reload forever, and ``/dev/zero`` would
    be read until memory runs out: both are refused here, before a byte is parsed.
    """
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PolicyFileError(
                [f"{source}: cannot read policy file (not a regular file); pass the path of a TOML file"],
                source=source,
            )
        data = b""
        while len(data) <= MAX_POLICY_BYTES:
            chunk = os.read(fd, MAX_POLICY_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
        if len(data) > MAX_POLICY_BYTES:
            raise PolicyFileError(
                [
                    f"{source}: the policy file is over {MAX_POLICY_BYTES // 1024} KiB, the most a policy "
                    "may be (a policy is a few KB); pass the policy itself, not another file"
                ],
                source=source,
            )
        return data
    finally:
        os.close(fd)


def load_policy_text(text: str, *, source: str) -> CompiledPolicy:
    """Validate and compile policy TOML text; ``load_policy`` for text that is not in a file (tests).

    Args:
        text: The TOML document.
        source: The name used in error messages and ``CompiledPolicy.source``.

    Returns:
        The validated, cross-checked, digested and indexed policy.

    Raises:
        PolicyFileError: The text is not a valid policy; ``errors`` lists every problem.
    """
    try:
        return _compile(text, source)
    except PolicyFileError:
        raise
    except RecursionError as exc:
        # tomllib parses nested arrays and inline tables recursively: a few thousand `[` exhaust it.
        raise PolicyFileError(
            [
                f"{source}: invalid TOML: arrays or inline tables nested too deeply for the parser; "
                "a policy nests a few levels at most, fix the file"
            ],
            source=source,
        ) from exc
    except Exception as exc:
        # Whatever else a hostile or corrupt file makes the parser or the models raise is still a file
        # that cannot be used: one line naming it, never a traceback in every decision.
        raise PolicyFileError(
            [f"{source}: cannot load policy file ({type(exc).__name__}); run `lanes policy check` on it"],
            source=source,
        ) from exc


def _compile(text: str, source: str) -> CompiledPolicy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(
            [f"{source}: invalid TOML: {exc}; fix the syntax at that line"], source=source
        ) from exc
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(
            [f"{source}: {_describe(error)}" for error in exc.errors(include_url=False)], source=source
        ) from None
    # Cross-checks run in the constructor, so no CompiledPolicy exists for a policy that fails one.
    return CompiledPolicy(policy, source=source)


# --- turning pydantic errors into reviewer messages ----------------------------------------------------

_NOUNS = {
    "preferred_lane": "a lane",
    "fallback": "a fallback",
    "stored_state": "a stored_state value",
    "completion_window": "a completion window",
}

_EXPECTED = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string in quotes",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "an array",
    "datetime_type": "a date such as 2027-01-01",
    "datetime_parsing": "a date such as 2027-01-01",
    "datetime_from_date_parsing": "a date such as 2027-01-01",
}

_TOML_TYPES = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    dict: "table",
    list: "array",
}


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _unwrap(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _annotation_at(loc: Sequence[int | str]) -> Any:
    """Follow a pydantic error location through the file models to the annotation it points at."""
    current: Any = Policy
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return None
    return _unwrap(current)


def _toml_type(value: object) -> str:
    for py, name in _TOML_TYPES.items():
        if type(value) is py:
            return name
    return "date" if hasattr(value, "isoformat") else type(value).__name__


def _describe(error: ErrorDetails) -> str:
    loc = error["loc"]
    path = _path(loc)
    kind = error["type"]
    value = error.get("input")
    key = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        parent = _annotation_at(loc[:-1])
        known = (
            sorted(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        )
        close = difflib.get_close_matches(key, known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else "remove it"
        return f"{path}: unknown key {key!r}; known keys: {', '.join(known)}; {fix}"
    if kind == "missing":
        table = f"[{_path(loc[:-1])}]" if len(loc) > 1 else "the top level"
        return f"{path}: required key is missing; add `{key} = ...` to {table}"
    if kind == "literal_error":
        annotation = _annotation_at(loc)
        choices = [str(c) for c in get_args(annotation)] if get_origin(annotation) is Literal else []
        noun = _NOUNS.get(key, "allowed here")
        shown = ", ".join(choices) if choices else str(error.get("ctx", {}).get("expected", ""))
        what = f"is not {noun}" if noun != "allowed here" else "is not allowed here"
        return f"{path}: {value!r} {what}; known: {shown}"
    if kind in _EXPECTED:
        return (
            f"{path}: expected {_EXPECTED[kind]}, got {value!r} ({_toml_type(value)}); "
            f"write it as {_EXPECTED[kind]}"
        )
    if kind in ("too_short", "string_too_short"):
        return f"{path}: must not be empty; give at least one value"
    return f"{path}: {error['msg']} (got {value!r}); fix the value"
