"""The docs stand alone: every command of ``ledgerlake`` has a section with an example in
docs/cli.md, and no doc points at issues or at files outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"
DOCS = sorted(
    [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "benchmarks").glob("*.md"),
        *(ROOT / "notebooks").glob("*.md"),
    ]
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def commands() -> list[str]:
    """The command names ``ledgerlake --help`` lists, read from the Typer app itself."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.main.TyperGroup)
    return sorted(name for name, cmd in group.commands.items() if not cmd.hidden)


def sections(text: str) -> dict[str, str]:
    """``## `name` `` headings of a markdown page and the text under each."""
    parts = re.split(r"^## `([a-z-]+)`\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_the_command_list_comes_from_the_app() -> None:
    names = commands()
    assert {"generate", "read", "sql", "search", "ui", "demo"} <= set(names)
    assert len(names) >= 17


@pytest.mark.parametrize("name", commands())
def test_every_command_has_a_section_with_an_example(name: str) -> None:
    body = sections(CLI_DOC.read_text(encoding="utf-8")).get(name)
    assert body is not None, f"docs/cli.md has no '## `{name}`' section"
    blocks = re.findall(r"```[a-z]*\n(.*?)```", body, flags=re.DOTALL)
    usage = [b for b in blocks if re.search(rf"ledgerlake\b.*\b{re.escape(name)}\b", b)]
    assert usage, f"the '{name}' section has no example of 'ledgerlake ... {name}'"
    assert f"](#{name})" in CLI_DOC.read_text(encoding="utf-8"), f"'{name}' is not in the index"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_point_at_nothing_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert not re.search(r"\bissues?\b", text, flags=re.IGNORECASE), "mentions an issue"
    assert "DESIGN.md" not in text and "shared/" not in text
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{target} is outside the repository"
        assert resolved.exists(), f"{target} does not exist"


def test_the_readme_quick_start_is_two_commands_and_names_browser_deps() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", quick, flags=re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    assert "make browser-deps" in readme and "make lock" in readme
