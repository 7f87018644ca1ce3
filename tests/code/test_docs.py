"""The README stays a map, and the docs hold together: links, make targets, benchmark blocks.

Every relative link in README.md and docs/*.md must reach a file, and its anchor a heading of
that file; every `make <target>` they name must be a target of the Makefile; the module list of
the README's layout must be the package as it is. The benchmark scripts write their tables into
docs/benchmarks.md through benchmarks/record.py, tested here on temporary pages.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 220

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
MAKE = re.compile(
    r"(?:^|[\s;&|(])make[ \t]+((?:[A-Za-z_][A-Za-z0-9_]*=\S*[ \t]+)*)([a-z][a-z0-9_-]*)"
)
TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_. -]*?)\s*::?(?!=)", re.M)


def load_record():
    """benchmarks/record.py, which the benchmark scripts import from their own directory."""
    spec = importlib.util.spec_from_file_location("record", ROOT / "benchmarks" / "record.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("record", module)
    spec.loader.exec_module(module)
    return module


def prose(text: str) -> str:
    """The text with fenced code blocks and code spans removed: links inside them are text."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def code(text: str) -> list[str]:
    """Fenced code blocks and code spans: where a `make` command can be written."""
    return [m.group(0) for m in FENCE.finditer(text)] + [
        m.group(2) for m in CODE_SPAN.finditer(FENCE.sub("", text))
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link of `page` that reaches no file, or no heading of its file."""
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    return broken


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {name for m in TARGET.finditer(text) for name in m.group(1).split()}


def named_targets(page: Path) -> set[str]:
    return {
        m.group(2)
        for block in code(page.read_text(encoding="utf-8"))
        for m in MAKE.finditer(block)
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert broken_links(page) == [], f"{page.name}: fix or remove these links"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_make_target_named_exists(page):
    missing = named_targets(page) - make_targets()
    assert not missing, f"{page.name} names make targets the Makefile lacks: {sorted(missing)}"


def test_readme_stays_a_map():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < MAX_README_LINES, (
        f"README.md has {lines} lines; keep it under {MAX_README_LINES}: move detail to docs/"
    )


def test_readme_layout_names_every_module_of_the_package():
    text = README.read_text(encoding="utf-8")
    layout = text[text.index("## Layout") :]
    named = set(re.findall(r"\b([a-z_]+)\.py\b", layout)) - {"__init__"}
    package = ROOT / "src" / "tabml"
    modules = {p.stem for p in package.glob("*.py")} | {
        p.stem for p in package.glob("serving/*.py")
    }
    modules.discard("__init__")
    assert named == modules, (
        f"README layout: add {sorted(modules - named)}, remove {sorted(named - modules)}"
    )


def test_make_help_lists_every_target_once_under_a_section():
    done = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    sections = re.findall(r"^(\S.*)$", text, re.M)
    listed = re.findall(r"^  (\S+) ", text, re.M)
    described = re.findall(
        r"^([a-zA-Z0-9_-]+):.*## ", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M
    )
    assert sorted(listed) == sorted(described)
    assert "Other" not in sections, "a target above the first ##@ line: give it a section"
    assert sections[:2] == ["Set-up", "Pipeline"]


# --- The checks themselves can fail ----------------------------------------------------------


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A `code` heading, too\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](other.md) [ok](other.md#a-code-heading-too) [ok](#title)\n"
        "[gone](missing.md) [no anchor](other.md#nowhere) [web](https://example.com/x)\n"
        "`[in code](missing-too.md)`\n\n```\n[in a block](missing-three.md)\n```\n"
    )
    assert broken_links(page) == [
        f"missing.md: no file {tmp_path / 'missing.md'}",
        "other.md#nowhere: no heading with anchor #nowhere in other.md",
    ]


def test_make_commands_are_read_from_code_only(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "To make things clear, run `make run` then `FOO=1 make deploy ENV=staging`.\n\n"
        "```bash\nmake monitor FAIL_ON_DRIFT=false  # what it would make\n"
        "make BASE=main report\n```\n"
    )
    assert named_targets(page) == {"run", "deploy", "monitor", "report"}


def test_makefile_targets_are_read():
    targets = make_targets()
    assert {"help", "run", "test", "bench", "bench-serve"} <= targets
    assert "SHELL" not in targets and ".PHONY" not in targets


# --- Benchmark blocks ------------------------------------------------------------------------


PAGE = (
    "# Benchmarks\n\n<!-- bench:a -->\nold a\n<!-- /bench:a -->\n\ntext\n\n"
    "<!-- bench:b -->\nold b\n<!-- /bench:b -->\n"
)


def test_a_block_is_replaced_and_nothing_else():
    record = load_record()
    new = record.replace_block(PAGE, "a", "new a\n\n| x |\n|---|\n")
    assert new == PAGE.replace("old a", "new a\n\n| x |\n|---|")
    assert record.replace_block(new, "a", "old a") == PAGE


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<!-- bench:b -->\n<!-- /bench:b -->\n", "found 0 and 0"),
        ("<!-- bench:a -->\n", "found 1 and 0"),
        (
            "<!-- bench:a -->\n<!-- /bench:a -->\n<!-- bench:a -->\n<!-- /bench:a -->\n",
            "found 2 and 2",
        ),
        ("<!-- /bench:a -->\n<!-- bench:a -->\n", "comes before"),
    ],
)
def test_a_page_without_one_ordered_block_is_refused(text, problem):
    record = load_record()
    with pytest.raises(record.BlockError, match=problem):
        record.replace_block(text, "a", "x")


def test_a_recorded_run_writes_its_block_with_when_where_and_how(tmp_path, capsys):
    record = load_record()
    docs = tmp_path / "benchmarks.md"
    docs.write_text(PAGE)
    with record.recorded("b", "make bench-b", docs=docs):
        print("| rows | seconds |\n|---:|---:|\n| 10 | 0.5 |")
    text = docs.read_text()
    block = text[text.index("<!-- bench:b -->") : text.index("<!-- /bench:b -->")]
    assert "(`make bench-b`)" in block and "cores" in block and "Measured " in block
    assert "| 10 | 0.5 |" in block and "old b" not in block
    assert text.startswith(PAGE[: PAGE.index("<!-- bench:b -->")])  # block a untouched
    assert "| 10 | 0.5 |" in capsys.readouterr().out  # still printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmarks.md"]  # no temporary left


def test_a_failed_run_leaves_the_page_alone(tmp_path):
    record = load_record()
    docs = tmp_path / "benchmarks.md"
    docs.write_text(PAGE)
    with pytest.raises(RuntimeError), record.recorded("a", docs=docs):
        print("| half a table |")
        raise RuntimeError("the benchmark broke")
    assert docs.read_text() == PAGE


def test_a_missing_block_stops_before_the_run(tmp_path):
    record = load_record()
    docs = tmp_path / "benchmarks.md"
    docs.write_text(PAGE)
    ran = []
    with (
        pytest.raises(SystemExit, match=r"cannot record benchmark 'c'.*found 0 and 0"),
        record.recorded("c", docs=docs),
    ):
        ran.append(True)
    assert ran == [] and docs.read_text() == PAGE


def test_every_benchmark_script_records_into_a_block_of_the_docs():
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    record = load_record()
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        if script.name == "record.py":
            continue
        names = re.findall(r"recorded\(\"([a-z-]+)\"", script.read_text(encoding="utf-8"))
        assert names, f"benchmarks/{script.name} prints a table but records it nowhere"
        for name in names:
            record.replace_block(text, name, "x")  # raises when its block is missing or broken
