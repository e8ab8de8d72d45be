"""What every command module shares: the Typer app, its help panels, the exit codes,
error handling, the STORE argument, small helpers."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import wraps
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from typer._click.exceptions import (  # typer's own click (0.29 vendors it)
    NoArgsIsHelpError,
    UsageError,
)
from typer.core import TyperGroup

from store.errors import BahfsError, BusyError, MachineError, OrchestrationError, ToolMissingError

#: exit codes, the same for every command (README, "Exit codes")
OK, CHECK_FAILED, BAD_INPUT, MACHINE, USAGE = 0, 1, 2, 3, 4

#: the help panels of ``bahfs --help``, in the order people need them
START = "Start"
BRING_IN = "Bring data in"
LOOK_AFTER = "Look after the store"
RESEARCH = "Research"


def exit_code(exc: BaseException) -> int:
    """The one place an error is classified: the machine (a tool, a disk, a device, a
    lock or a server to fix before running again), else bad input."""
    if isinstance(exc, MachineError | ToolMissingError | BusyError | OrchestrationError):
        return MACHINE
    if isinstance(exc, BahfsError | ValidationError):
        return BAD_INPUT
    return MACHINE  # an OSError bahfs did not raise itself: permissions, disk, network


def one_line(exc: BaseException) -> str:
    """``exc`` as the one line a user reads: what was wrong and what to do."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"option {where!r}: {msg} (got {err.get('input')!r})"
    if isinstance(exc, BahfsError):
        return str(exc).replace("\n", " ")
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return str(exc).replace("\n", " ")


def _fail(exc: BaseException) -> typer.Exit:
    typer.secho(f"error: {one_line(exc)}", fg=typer.colors.RED, err=True)
    return typer.Exit(exit_code(exc))


class BahfsGroup(TyperGroup):
    """The top-level group: errors found while parsing the command line (a missing
    argument, an unknown option, a STORE that is not a store) as one line, with the
    exit codes above; help stays rich (panels)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except NoArgsIsHelpError:  # a group given no command: its help, already shown
            code = OK
        except UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            typer.secho(f"error: {exc.format_message()}{hint}", fg=typer.colors.RED,
                        err=True)
            code = USAGE
        except typer.TyperException as exc:  # click's other exceptions: a bad file given
            typer.secho(f"error: {exc.format_message()}", fg=typer.colors.RED, err=True)
            code = BAD_INPUT
        except typer.Abort:  # Ctrl-D at a prompt
            typer.secho("aborted", err=True)
            code = CHECK_FAILED
        except (BahfsError, ValidationError, OSError) as exc:  # raised by a callback
            code = _fail(exc).exit_code
        else:
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else OK
        if not standalone_mode:
            return code
        sys.exit(code)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"bahfs {version('bahfs')}")
        except PackageNotFoundError:  # pragma: no cover - run from a bare checkout
            typer.echo("bahfs (not installed: no version recorded)")
        raise typer.Exit()


app = typer.Typer(cls=BahfsGroup, no_args_is_help=True, add_completion=True,
                  rich_markup_mode="markdown",
                  help="bahfs: extract BAH videos once, serve aligned features fast. "
                       "Exit codes: 0 done, 1 a check found problems, 2 bad input, "
                       "3 the machine (tool, disk, device, server), 4 bad usage.",
                  epilog="Example: bahfs doctor && bahfs status /data/bah/store")


@app.callback()
def main(version_: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the installed bahfs version and exit.")] = False) -> None:
    """bahfs: extract BAH videos once, serve aligned features fast."""


F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn bahfs errors, options a validated config refuses and OS errors into one
    clear line on stderr and the exit code of their kind (:func:`exit_code`)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (BahfsError, ValidationError) as exc:
            raise _fail(exc) from exc
        except OSError as exc:
            raise _fail(exc) from exc

    return wrapper  # type: ignore[return-value]


#: the commands that take a store in a bucket (``s3://BUCKET/PREFIX``)
S3_COMMANDS = ("ingest, extract, verify, purge, quarantine list, quarantine release, copy, "
               "status, stats, review, cues evaluate, export-baseline, train, evaluate, "
               "predict, personalise")


def _refuse_s3(path: Path) -> None:
    from store.errors import StoreError
    from store.s3_objects import is_s3

    if is_s3(path):
        raise StoreError("this command works on a store in a local folder",
                         expected=f"a folder (s3:// stores: {S3_COMMANDS}; "
                                  "`bahfs copy s3://... DIR` makes a local copy)")


def local_folder(path: Path) -> Path:
    """A folder option's value; an ``s3://`` address refused (never a folder ``s3:``)."""
    from store.location import local_folder as checked

    return checked(path)


def _existing_store(path: Path) -> Path:
    from store.location import existing_store

    _refuse_s3(path)
    return existing_store(path)


def _new_or_existing_store(text: str) -> Any:
    """A store's folder, or a missing or empty one (a Path); or the
    :class:`store.s3.S3Store` at ``s3://...`` holding a store or nothing (opened here,
    where the AWS settings are read)."""
    from store.location import store_to_write
    from store.s3_objects import is_s3

    if is_s3(text):
        from store.local import bucket_to_write

        return bucket_to_write(text)
    return store_to_write(Path(text))


def _any_store(text: str) -> Any:
    """A local store's folder (a Path), or the :class:`store.s3.S3Store` at
    ``s3://...`` (opened here, where the AWS settings are read)."""
    from store.s3_objects import is_s3

    if is_s3(text):
        from store.local import open_store

        return open_store(text)
    return _existing_store(Path(text))


def _store_location(text: str) -> Path | str:
    """A local store's folder (a Path), or ``s3://bucket/prefix`` (as that text) once a
    store is found there: for the commands that open the store themselves, with
    their own settings (training's cache)."""
    from store.s3_objects import is_s3

    if is_s3(text):
        from store.local import open_store

        return open_store(text).location
    return _existing_store(Path(text))


#: the STORE argument of every command that reads or changes a store
StoreArg = Annotated[Path, typer.Argument(
    metavar="STORE",
    callback=_existing_store, show_default=False,
    help="A store: the folder `bahfs ingest` or `bahfs extract` wrote.")]
#: the STORE argument of the commands that also work on a bucket: a Path, or a Store
AnyStoreArg = Annotated[Any, typer.Argument(
    metavar="STORE", parser=str, callback=_any_store, show_default=False,
    help="A store: the folder `bahfs ingest` or `bahfs extract` wrote, or "
         "s3://BUCKET/PREFIX (AWS_ENDPOINT_URL, AWS_REGION and the usual AWS "
         "credentials).")]
#: the STORE argument of the training commands: a folder's Path, or the s3:// text
StoreLocationArg = Annotated[Any, typer.Argument(
    metavar="STORE", parser=str, callback=_store_location, show_default=False,
    help="A store: the folder `bahfs ingest` or `bahfs extract` wrote, or "
         "s3://BUCKET/PREFIX (AWS_ENDPOINT_URL, AWS_REGION and the usual AWS "
         "credentials; arrays read through a local cache, --s3-cache).")]
#: the STORE argument of ``ingest`` and ``extract``, made when missing: a Path, or a
#: Store in a bucket
NewStoreArg = Annotated[Any, typer.Argument(
    metavar="STORE", parser=str, callback=_new_or_existing_store, show_default=False,
    help="The store to write: an existing store, a new (missing or empty) folder, or "
         "s3://BUCKET/PREFIX holding a store or nothing (AWS_ENDPOINT_URL, AWS_REGION "
         "and the usual AWS credentials).")]


def local_out(store: Any, given: Path | None, default: str, option: str) -> Path:
    """Where a command writes its files: ``given``, else ``STORE/default`` for a store
    in a folder; a store in a bucket needs ``option`` (nothing is written into it)."""
    if given is not None:
        return given
    if isinstance(store, Path):
        return store / default
    from store.errors import ConfigError

    raise ConfigError(f"a store in a bucket: where to write is not STORE/{default}",
                      expected=f"{option} DIR, a local folder")


def csv_names(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma separated option values)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def print_table(title: str, df: Any) -> None:
    import polars as pl

    with pl.Config(tbl_rows=60, tbl_cols=20, tbl_width_chars=160, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        typer.secho(f"\n{title}", bold=True)
        typer.echo(str(df))
