"""No number in README or docs that the records do not produce: every result-like number outside code
blocks (a top-1 fraction, a signed difference, ms, s, GFLOP/s, a ratio, a percentage) must stand in a
file generated from records (``results/*.md``) or be a constant of the source (a recipe's lr, a
tolerance). A number typed from an old table fails here as soon as the table is regenerated without it.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULT_LIKE = re.compile(r"(?<![\w.])(?:[+−-]?0\.\d{3,4}|\d+(?:\.\d+)?(?=\s?(?:ms\b|s\b|GFLOP/s|x\b|%))|"
                         r"\d+\.\d+(?=[–-]\d))")
FENCE = re.compile(r"(?ms)^(?:    |\t).*?$|```.*?```|`[^`\n]*`")


@lru_cache(maxsize=1)
def produced() -> str:
    """Every generated table and every source file, as one text to look numbers up in."""
    parts = [p.read_text(errors="replace") for p in sorted((ROOT / "results").glob("*.md"))]
    for pkg in ("architectures", "backends", "bench", "datasets", "tests"):
        parts += [p.read_text(errors="replace") for p in sorted((ROOT / pkg).rglob("*.py")) if p.name != Path(__file__).name]
    return "\n".join(parts).replace("−", "-")


def unproduced(text: str) -> list[str]:
    prose = FENCE.sub(" ", text)
    found = []
    for m in RESULT_LIKE.finditer(prose):
        if prose[max(0, m.start() - 7):m.start()].endswith("Python "):
            continue  # a version, not a measurement
        number = m.group(0).replace("−", "-").lstrip("+")
        if not re.search(rf"(?<![\d.]){re.escape(number.lstrip('-'))}(?![\d])", produced()):
            found.append(m.group(0))
    return found


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_number_in_the_docs_is_produced_by_the_records_or_the_source(path):
    assert unproduced(path.read_text()) == []


def test_the_check_finds_a_typed_number():
    assert unproduced("full fine-tuning reached 0.8123 here, 987.65 ms a step") == ["0.8123", "987.65"]
    assert unproduced("Python 3.10–3.11") == []
    assert unproduced("`python -m bench run --lr 0.0123` in code is not prose") == []
