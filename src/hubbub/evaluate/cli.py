"""``hubbub evaluate``: codec figures, AHP weights and the decision matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from hubbub.evaluate import codecs, decision

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure codecs and rank codecs and engine configurations with AHP.",
)
console = Console()

DecisionFile = Annotated[Path, typer.Option("--decision", "-d", help="Decision YAML")]
JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Write results here")]  # noqa: UP045


def _codec_table(figures: list[codecs.CodecFigures]) -> Table:
    table = Table(title="codecs: server-side cost per message")
    for name in (
        "codec",
        "sample",
        "payload B",
        "encode push ns",
        "decode publish ns",
        "push B",
        "command B",
    ):
        table.add_column(name, justify="left" if name in ("codec", "sample") else "right")
    for f in figures:
        table.add_row(
            f.codec,
            f.sample,
            str(f.payload_bytes),
            f"{f.encode_ns:,.0f}",
            f"{f.decode_ns:,.0f}",
            str(f.push_bytes),
            str(f.command_bytes),
        )
    return table


def _fail(exc: Exception) -> typer.Exit:
    """One plain line on stderr: no Rich markup (a "[a, b]" in it would vanish), no wrapping."""
    typer.echo(f"hubbub evaluate: {' '.join(str(exc).split())}", err=True)
    return typer.Exit(2)


@app.command("codecs")
def codecs_command(
    budget: Annotated[float, typer.Option(help="Seconds per timing repeat")] = 0.04,
    json_out: JsonOut = None,
) -> None:
    """Encode/decode ns per message and bytes per message of every registered codec."""
    figures = codecs.measure(budget_s=budget)
    console.print(_codec_table(figures))
    if json_out is not None:
        json_out.write_bytes(msgspec.json.format(msgspec.json.encode(figures), indent=2) + b"\n")


@app.command()
def weights(decision_file: DecisionFile) -> None:
    """Criterion weights and consistency ratio of every scenario in a decision file."""
    try:
        loaded = decision.load(decision_file)
    except decision.DecisionError as exc:
        raise _fail(exc) from None
    table = Table(title="criterion weights (principal eigenvector)")
    table.add_column("scenario")
    for criterion in loaded.criteria:
        table.add_column(criterion, justify="right")
    table.add_column("λmax", justify="right")
    table.add_column("CR", justify="right")
    for s in loaded.scenarios:
        p = s.priorities
        table.add_row(
            s.name,
            *(f"{p.weight(c):.3f}" for c in loaded.criteria),
            f"{p.lambda_max:.3f}",
            f"{p.cr:.3f}",
        )
    console.print(table)


def _ranking_table(ranking: decision.Ranking) -> Table:
    title = f"{ranking.scenario}: {ranking.group}"
    if ranking.left_out:
        title += f" (no figures for {', '.join(ranking.left_out)}: left out)"
    table = Table(title=title)
    table.add_column("rank", justify="right")
    table.add_column("alternative")
    for c in ranking.criteria:
        table.add_column(
            f"{c} (w={ranking.weights[c]:.2f})\nvalue {decision.UNITS[c]} → score", justify="right"
        )
    table.add_column("total", justify="right")
    for position, name in enumerate(ranking.ordered(), start=1):
        table.add_row(
            str(position),
            name,
            *(
                f"{ranking.values[name][c]:,.4g} → {ranking.scores[name][c]:.3f}"
                for c in ranking.criteria
            ),
            f"[bold]{ranking.totals[name]:.3f}",
        )
    return table


@app.command()
def rank(
    decision_file: DecisionFile,
    budget: Annotated[float, typer.Option(help="Seconds per codec timing repeat")] = 0.04,
    json_out: JsonOut = None,
) -> None:
    """Measure the codecs, read the engine results, rank both groups per scenario."""
    try:
        loaded = decision.load(decision_file)
        values: dict[str, dict[str, dict[str, float]]] = {}
        figures: list[codecs.CodecFigures] = []
        for group, alternatives in loaded.groups.items():
            if group == "codecs":
                figures = codecs.measure(budget_s=budget)
                means = codecs.per_codec(figures)
                for name in alternatives:
                    if name not in means:
                        raise decision.DecisionError(
                            f"{loaded.path}: alternatives.codecs.{name}: no registered codec "
                            f"of that name (registered: {', '.join(means)})"
                        )
                values[group] = {
                    name: decision.codec_values(means[name], spec)
                    for name, spec in alternatives.items()
                }
            else:
                values[group] = {
                    name: decision.engine_values(
                        spec, loaded.base, where=f"{loaded.path}: alternatives.{group}.{name}"
                    )
                    for name, spec in alternatives.items()
                }
    except decision.DecisionError as exc:
        raise _fail(exc) from None
    if figures:
        console.print(_codec_table(figures))
    weights(decision_file)
    rankings = [
        decision.rank(scenario, group, group_values)
        for scenario in loaded.scenarios
        for group, group_values in values.items()
    ]
    for ranking in rankings:
        console.print(_ranking_table(ranking))
    if json_out is not None:
        document = {
            "schema": "hubbub.evaluate.ranking/1",
            "criteria": loaded.criteria,
            "weights": {
                s.name: {
                    "weights": dict(zip(s.priorities.names, s.priorities.weights, strict=True)),
                    "lambda_max": s.priorities.lambda_max,
                    "cr": s.priorities.cr,
                }
                for s in loaded.scenarios
            },
            "codecs": msgspec.to_builtins(figures),
            "rankings": [
                {
                    "scenario": r.scenario,
                    "group": r.group,
                    "weights": r.weights,
                    "left_out": r.left_out,
                    "order": r.ordered(),
                    "values": r.values,
                    "scores": r.scores,
                    "totals": r.totals,
                }
                for r in rankings
            ],
        }
        json_out.write_text(json.dumps(document, indent=2) + "\n")
