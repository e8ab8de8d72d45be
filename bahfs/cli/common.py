"""What every command module shares: the Typer app, error handling, small helpers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from store.errors import BahfsError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="bahfs: extract BAH videos once, serve aligned features fast.")

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn bahfs errors, and options a validated config refuses, into one clear line on
    stderr and exit status 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BahfsError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            typer.secho(f"error: option {where!r}: {err['msg']} (got {err.get('input')!r})",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def csv_names(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma separated option values)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def print_table(title: str, df: Any) -> None:
    import polars as pl

    with pl.Config(tbl_rows=60, tbl_cols=20, tbl_width_chars=160, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        typer.secho(f"\n{title}", bold=True)
        typer.echo(str(df))
