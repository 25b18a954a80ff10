"""docs/SECURITY.md names the tests that show its claims: every one of them must exist.

Names are parsed from the document (``tests/path.py::test_name``, optionally with a
``[parameter]`` suffix) and looked up in the named file's syntax tree: a module-level test
function, or a method of a ``Test…`` class (``tests/x.py::TestThing::test_name``).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "SECURITY.md"
_NAME = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)(?:\[[^\]`]*\])?`")


def named_tests(text: str) -> list[tuple[str, str]]:
    """Every ``(path, name)`` that ``text`` names, in order, without repeats."""
    return list(dict.fromkeys(_NAME.findall(text)))


@cache
def _tests_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found.add(f"{node.name}::{item.name}")
    return frozenset(found)


def missing_tests(text: str, root: Path = ROOT) -> list[str]:
    """The names in ``text`` whose file or test function does not exist under ``root``."""
    out = []
    for rel, name in named_tests(text):
        path = root / rel
        if not path.is_file() or name not in _tests_in(path):
            out.append(f"{rel}::{name}")
    return out


def test_every_test_security_md_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = named_tests(text)
    assert len(names) >= 60, f"only {len(names)} tests named"
    assert missing_tests(text) == []


def test_security_md_covers_what_the_issue_asks() -> None:
    text = DOC.read_text(encoding="utf-8").lower()
    for topic in (
        "malicious citizen",
        "malicious or compromised city node",
        "malicious peer",
        "network attacker",
        "curious registrar",
        "ballot secrecy",
        "coercion",
        "key handling",
        "backups",
        "key rotation",
        "handover",
        "lost key",
        "moving to another city",
        "no personal data",
    ):
        assert topic in text, topic
    for part in ("**prevented**", "**detected**", "**out of scope**"):
        assert text.count(part) >= 3, part


@pytest.mark.parametrize(
    ("doc", "missing"),
    [
        ("`tests/test_security_doc.py::test_every_test_security_md_names_exists`", []),
        (
            "`tests/test_security_doc.py::test_no_such_thing[x]`",
            ["tests/test_security_doc.py::test_no_such_thing"],
        ),
        ("`tests/no/such_file.py::test_x`", ["tests/no/such_file.py::test_x"]),
    ],
)
def test_the_checker_finds_missing_names(doc: str, missing: list[str]) -> None:
    assert missing_tests(doc) == missing
