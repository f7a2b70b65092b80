"""The ``lanes emulator`` command: run the emulator as a standalone local server.

Developers point ``OPENAI_BASE_URL`` at it to run lanes end to end without a key, and the load
benchmark runs it in a separate process so that client and server do not share one CPU.

Its flags are derived from :class:`~responses_emulator.config.EmulatorConfig`'s fields, so a new knob is
a new flag without a second list to keep in step: a field's flag drops the ``_s`` unit suffix
(``duration_s`` is ``--duration``, ``retry_after_s`` is ``--retry-after``) and keeps any other
(``latency_ms`` is ``--latency-ms``); its help is the field's entry in the model's ``Attributes:``
docstring, and the model validates the values.
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from lanes.dev.emulator_server import serve
from responses_emulator.clock import ShiftedClock, SystemClock
from responses_emulator.config import EmulatorConfig

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788


def flag_name(field: str) -> str:
    """The command-line flag of an :class:`EmulatorConfig` field."""
    return "--" + field.removesuffix("_s").replace("_", "-")


def _field_help() -> dict[str, str]:
    """Each field's text from ``EmulatorConfig``'s ``Attributes:`` docstring section."""
    doc = inspect.getdoc(EmulatorConfig) or ""
    section = doc.partition("Attributes:")[2]
    helps: dict[str, str] = {}
    current: str | None = None
    for line in section.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            helps[current] = match.group(2)
        elif current is not None and line.startswith("        "):
            helps[current] += " " + line.strip()
    # The first sentence, without reStructuredText markup, is enough for a flag's help.
    return {name: text.replace("``", "").split(". ")[0].rstrip(".") for name, text in helps.items()}


def _parameters() -> list[inspect.Parameter]:
    """One keyword parameter per field, with its Typer option, type and default."""
    helps = _field_help()
    parameters = [
        inspect.Parameter(
            "host",
            inspect.Parameter.KEYWORD_ONLY,
            default=DEFAULT_HOST,
            annotation=Annotated[str, typer.Option("--host", help="interface to bind")],
        ),
        inspect.Parameter(
            "port",
            inspect.Parameter.KEYWORD_ONLY,
            default=DEFAULT_PORT,
            annotation=Annotated[int, typer.Option("--port", help="TCP port, 0 for any")],
        ),
    ]
    parameters.append(
        inspect.Parameter(
            "clock",
            inspect.Parameter.KEYWORD_ONLY,
            default="system",
            annotation=Annotated[
                str,
                typer.Option(
                    "--clock",
                    help="system, or shifted: wall time that POST /_emulator/clock/advance moves on",
                ),
            ],
        )
    )
    for name, info in EmulatorConfig.model_fields.items():
        annotation: Any = info.annotation
        if name == "models":
            # A list on the command line: comma-separated, '' for "accept any model".
            parameters.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,
                    annotation=Annotated[
                        str | None,
                        typer.Option(
                            "--models", help="comma-separated model names to accept ('' accepts any)"
                        ),
                    ],
                )
            )
            continue
        if name == "zdr_api_keys":
            parameters.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default="",
                    annotation=Annotated[
                        str,
                        typer.Option(
                            "--zdr-api-keys",
                            help="comma-separated keys of Zero Data Retention projects (store is treated "
                            "as false; the ledger marks their requests zdr_project)",
                        ),
                    ],
                )
            )
            continue
        option: dict[str, Any] = {"help": helps.get(name, "")}
        flags = [flag_name(name)]
        if annotation is bool:
            flags = [f"{flag_name(name)}/--no-{flag_name(name).removeprefix('--')}"]
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=info.get_default(call_default_factory=True),
                annotation=Annotated[annotation, typer.Option(*flags, **option)],
            )
        )
    return parameters


def config_from_options(values: dict[str, Any]) -> EmulatorConfig:
    """Validate the flags' values as an :class:`EmulatorConfig`.

    Raises:
        typer.BadParameter: A value is out of range; the message names the flag.
    """
    fields = {k: v for k, v in values.items() if k in EmulatorConfig.model_fields}
    if fields.get("models") is None:
        fields.pop("models", None)
    else:
        fields["models"] = tuple(m.strip() for m in str(fields["models"]).split(",") if m.strip())
    keys = str(fields.get("zdr_api_keys") or "").split(",")
    fields["zdr_api_keys"] = tuple(key.strip() for key in keys if key.strip())
    try:
        return EmulatorConfig(**fields)
    except ValidationError as exc:
        problems = [
            f"{flag_name(str(e['loc'][0])) if e['loc'] else 'config'}: {e['msg']}" for e in exc.errors()
        ]
        raise typer.BadParameter("; ".join(problems)) from None


def emulator(**values: Any) -> None:
    """Serve a fault-injecting emulator of the OpenAI Responses API on loopback until interrupted."""
    config = config_from_options(values)
    if values["clock"] not in ("system", "shifted"):
        raise typer.BadParameter("--clock: system or shifted")
    clock = ShiftedClock() if values["clock"] == "shifted" else SystemClock()
    serve(config, host=str(values["host"]), port=int(values["port"]), clock=clock)


emulator.__signature__ = inspect.Signature(_parameters(), return_annotation=None)  # type: ignore[attr-defined]
# Typer reads the parameters from the signature; the annotations are objects, not strings.
emulator.__annotations__ = {p.name: p.annotation for p in emulator.__signature__.parameters.values()}  # type: ignore[attr-defined]


EMULATOR_HELP = "Run a local emulator of the OpenAI Responses API (flags from EmulatorConfig)."
"""The command's one-line help, in ``lanes --help`` and in its own."""


def main(argv: list[str] | None = None, *, prog_name: str = "lanes emulator") -> None:
    """``lanes emulator``: the emulator served over loopback HTTP, with flags from its config."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(help=EMULATOR_HELP)(emulator)
    app(args=argv if argv is not None else sys.argv[1:], prog_name=prog_name)
