"""Decision-file mistakes: one DecisionError naming the file and the key, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hubbub.evaluate import decision
from hubbub.evaluate.cli import app

HEAD = """criteria: [throughput, latency]
scenarios:
  s1:
    judgements:
      throughput: {latency: 2}
"""

SCENARIO = "criteria: [throughput, latency]\nscenarios:\n  s1:\n"

# case → (file text, the key path and problem the message must contain)
CASES: dict[str, tuple[str, str]] = {
    "empty file": ("", "the file is empty"),
    "top level is a list": ("- criteria\n", "expected a mapping with criteria"),
    "unknown top-level key": (HEAD + "alternative: {}\n", "alternative: unknown key"),
    "invalid yaml": ("criteria: [throughput\n", "invalid YAML: line 2"),
    "criteria is a scalar": ("criteria: 5\n", "criteria: expected a list"),
    "criterion is a list": (
        "criteria: [[throughput], latency]\nscenarios: {s1: {judgements: {}}}\n",
        "criteria[0]: expected a criterion name",
    ),
    "criterion twice": ("criteria: [latency, latency]\n", "criteria: latency is listed twice"),
    "scenarios missing": ("criteria: [latency]\n", "scenarios: expected a mapping"),
    "scenario is empty": (SCENARIO, "scenarios.s1: expected {judgements"),
    "scenario is a list": (HEAD + "  s2: [1]\n", "scenarios.s2: expected {judgements"),
    "scenario key misspelt": (
        SCENARIO + "    judgments: {}\n",
        "scenarios.s1.judgments: unknown key",
    ),
    "judgements row is a scalar": (
        HEAD + "      latency: 3\n",
        "scenarios.s1.judgements.latency: expected a mapping such as {other: 3}, got 3",
    ),
    "judgement off the scale": (
        SCENARIO + "    judgements: {throughput: {latency: 12}}\n",
        "scenarios.s1.judgements.throughput.latency: judgement 12 is outside",
    ),
    "judgement of an unlisted criterion": (
        SCENARIO + "    judgements: {throughput: {memory: 2}}\n",
        "scenarios.s1.judgements.throughput.memory: not one of the criteria",
    ),
    "judgement is a huge integer": (
        SCENARIO + "    judgements: {throughput: {latency: " + "9" * 400 + "}}\n",
        "scenarios.s1.judgements.throughput.latency: judgement",
    ),
    "description is a mapping": (
        HEAD + "    description: {a: 1}\n",
        "scenarios.s1.description: expected text",
    ),
    "alternatives is empty": (HEAD + "alternatives:\n", "alternatives: expected groups"),
    "group is a list": (
        HEAD + "alternatives:\n  engines: [a, b]\n",
        "alternatives.engines: expected a mapping of alternatives",
    ),
    "group is empty": (HEAD + "alternatives:\n  engines:\n", "alternatives.engines: expected"),
    "alternative is a scalar": (
        HEAD + "alternatives:\n  engines:\n    a: 5\n",
        "alternatives.engines.a: expected a mapping such as",
    ),
    "rating is a word": (
        HEAD + "alternatives:\n  engines:\n    redis: {operability: high}\n",
        "alternatives.engines.redis.operability: expected a number >= 0, got 'high'",
    ),
    "rating is nan": (
        HEAD + "alternatives:\n  engines:\n    a: {operability: .nan}\n",
        "alternatives.engines.a.operability: expected a number >= 0, got nan",
    ),
    "rating is a huge integer": (
        HEAD + "alternatives:\n  codecs:\n    json: {operability: " + "9" * 400 + "}\n",
        "alternatives.codecs.json.operability: expected a number >= 0",
    ),
    "rating misspelt": (
        HEAD + "alternatives:\n  engines:\n    a: {operabilty: 3}\n",
        "alternatives.engines.a.operabilty: unknown key",
    ),
    "results is a string": (
        HEAD + "alternatives:\n  engines:\n    a: {results: x.json}\n",
        "alternatives.engines.a.results: expected a list such as [results/run.json#label], "
        "got 'x.json'",
    ),
    "result reference is a number": (
        HEAD + "alternatives:\n  engines:\n    a: {results: [5]}\n",
        "alternatives.engines.a.results[0]: expected a file.json",
    ),
    "codecs have no result files": (
        HEAD + "alternatives:\n  codecs:\n    json: {results: [x.json]}\n",
        "alternatives.codecs.json.results: unknown key",
    ),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "decision.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_load_names_the_file_and_the_key(tmp_path: Path, case: str) -> None:
    """Every shape mistake is found by ``load``, with file and full key path."""
    text, expected = CASES[case]
    path = write(tmp_path, text)
    with pytest.raises(decision.DecisionError) as caught:
        decision.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_unreadable_files(tmp_path: Path) -> None:
    """Missing, a directory, not text: still one line naming the file."""
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00criteria")
    for path, expected in (
        (tmp_path / "nope.yaml", "No such file"),
        (tmp_path, "directory"),
        (binary, "not UTF-8 text"),
    ):
        with pytest.raises(decision.DecisionError, match=expected) as caught:
            decision.load(path)
        assert str(caught.value).startswith(f"{path}: ")


def test_loaded_specs_are_mappings(tmp_path: Path) -> None:
    """An alternative given alone (``json:``) is an empty spec, not None."""
    loaded = decision.load(write(tmp_path, HEAD + "alternatives:\n  codecs:\n    json:\n"))
    assert loaded.groups == {"codecs": {"json": {}}}
    assert loaded.path == tmp_path / "decision.yaml"


def test_result_file_errors_name_the_reference(tmp_path: Path) -> None:
    """A missing or malformed result file is reported with the key that refers to it."""
    (tmp_path / "array.json").write_text(json.dumps([1, 2]))
    (tmp_path / "scalar.json").write_text(json.dumps({"results": 5}))
    text = HEAD + "alternatives:\n  engines:\n    a: {results: [missing.json]}\n"
    loaded = decision.load(write(tmp_path, text))
    where = f"{loaded.path}: alternatives.engines.a"
    for reference in ("missing.json", "array.json", "scalar.json"):
        with pytest.raises(decision.DecisionError) as caught:
            decision.engine_values({"results": [reference]}, loaded.base, where=where)
        assert str(caught.value).startswith(f"{where}.results[0]: {reference}: ")
    with pytest.raises(decision.DecisionError, match="results: expected a list"):
        decision.engine_values({"results": "x.json"}, loaded.base, where=where)


@pytest.mark.parametrize("command", ["weights", "rank"])
def test_cli_prints_one_line_and_fails(tmp_path: Path, command: str) -> None:
    """No traceback and no Rich markup eating "[...]": one line on stderr, exit 2."""
    path = write(tmp_path, "criteria: 5\n")
    result = CliRunner().invoke(app, [command, "--decision", str(path)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert result.stderr == (
        f"hubbub evaluate: {path}: criteria: expected a list such as [throughput, latency], got 5\n"
    )


def test_cli_names_a_missing_result_file(tmp_path: Path) -> None:
    """``rank`` reads result files after ``load``: their errors name the key too."""
    text = HEAD + "alternatives:\n  engines:\n    a: {results: [gone.json]}\n"
    path = write(tmp_path, text)
    result = CliRunner().invoke(app, ["rank", "--decision", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"hubbub evaluate: {path}: alternatives.engines.a.results[0]: gone.json: "
    )
    assert result.stderr.count("\n") == 1
