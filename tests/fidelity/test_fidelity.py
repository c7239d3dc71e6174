"""docs/fidelity.md must match what the dialect modules do today, and the matrix must hold the
promises the issue makes (tool calls and their streamed arguments lossless for every pair;
signatures never forged across providers)."""

from __future__ import annotations

from pathlib import Path

from tests.fidelity.matrix import DIALECTS, FAMILY, build_matrix, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"


def test_doc_is_current() -> None:
    assert DOC.read_text() == render_markdown() + "\n", (
        "docs/fidelity.md is stale: run python scripts/gen_fidelity.py"
    )


def test_core_features_lossless_every_pair() -> None:
    matrix = build_matrix()
    for section, feature in (
        ("request", "text"),
        ("request", "system instructions"),
        ("request", "tool definitions"),
        ("request", "parallel tool calls + results in history"),
        ("response", "text answer"),
        ("response", "parallel tool calls"),
        ("stream", "text answer"),
        ("stream", "parallel tool calls"),
        ("stream", "usage: input/output"),
    ):
        for pair, cell in matrix[section][feature].items():
            assert cell.startswith("lossless"), (section, feature, pair, cell)


def test_signatures_never_forged() -> None:
    """A signature reaches a client either intact for its own family or not at all."""
    matrix = build_matrix()
    for section in ("response", "stream"):
        for pair, cell in matrix[section]["thinking signature (never forged)"].items():
            client, backend = pair.split(" → ")
            assert client in DIALECTS and backend in DIALECTS
            if FAMILY[client] == FAMILY[backend]:
                assert cell.startswith(("lossless", "n/a")), (section, pair, cell)
            else:
                # dropped, or carried back to its own family in an envelope — never re-signed
                assert cell.startswith(("lossless", "lossy", "n/a")), (section, pair, cell)
                assert "sig123" not in cell.split("→", 1)[-1] or FAMILY[backend] in cell
