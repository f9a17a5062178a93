"""The README's walkthrough, run as written against a live ``switchboard serve``.

Every block fenced ```` ```sh ```` runs, in the README's order, in a bash of its own with
``set -euo pipefail``, in a scratch folder that holds links to ``.venv`` and ``examples``: so a block
stands alone (one that needs a token signs in itself) and every command in it must succeed. A
``# →`` line is what the command above it prints; its pieces between ``…`` must appear in the block's
output, in order, after those of the lines before it.

Two things in the text are changed before it runs, and only these: the server's address
(``localhost:8000``, ``127.0.0.1:8000``) becomes the test server's free port, and the public pages the
examples fetch (``https://example.com/``, ``https://example.org/``) become pages of the local target
server (``tests/targets.py``), because a test never reaches off this machine. The server allows
127.0.0.0/8 for that (``tests/processes.py``), which leaves the README's cloud metadata address as
``BLOCKED`` as it is for a reader.

Blocks fenced otherwise are not run, on purpose:

- ``console``: ``make run`` and ``make test`` (they install and serve: this test's own setup), the
  Docker commands (no Docker engine here), the client generators (they install from npm and PyPI);
- ``js``: the graphql-ws snippet needs npm's ``graphql-ws`` and a job's id; ``node --check`` parses it
  when Node is installed;
- ``ts``, ``toml``: the generators' configuration files, not commands; a bare fence: the layout tree.

A fence this test does not know fails it, so a new block cannot be left out silently.
"""

import asyncio
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.db.engine import Database
from tests.processes import free_port, ready, server_process

README = Path(__file__).parent.parent / "README.md"
FENCE = re.compile(r"^```(\S*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
RUN, PARSE, NOT_RUN = {"sh"}, {"js"}, {"console", "ts", "toml", "text", ""}
EXPECTED = "# → "


@dataclass
class Block:
    fence: str
    text: str
    section: str

    def expected(self) -> list[list[str]]:
        """The pieces of each ``# →`` line, split at ``…``."""
        lines = (line.strip() for line in self.text.splitlines())
        return [
            [piece for piece in line.removeprefix(EXPECTED).split("…") if piece]
            for line in lines
            if line.startswith(EXPECTED)
        ]


def blocks() -> list[Block]:
    readme = README.read_text()
    found = []
    for match in FENCE.finditer(readme):
        headings = HEADING.findall(readme, 0, match.start())
        found.append(Block(match[1], match[2], headings[-1] if headings else "(top)"))
    return found


def unmatched(output: str, expected: list[list[str]]) -> str | None:
    """The first expected piece missing from ``output`` (searched in order), or None."""
    at = 0
    for line in expected:
        for piece in line:
            found = output.find(piece, at)
            if found < 0:
                return f"{piece!r} (of the line {'…'.join(line)!r}) after offset {at}"
            at = found + len(piece)
    return None


def test_every_block_is_run_or_left_out_on_purpose() -> None:
    fences = [block.fence for block in blocks()]
    assert set(fences) <= RUN | PARSE | NOT_RUN, f"a fence this test does not know: {set(fences)}"
    assert fences.count("sh") >= 5
    assert all(any(block.expected()) for block in blocks() if block.fence == "sh")


async def test_the_walkthrough_runs_as_written(live_database: Database, targets: str, tmp_path: Path) -> None:
    """On SQLite only, the database ``make run`` sets up: the walkthrough checks the commands and what
    they print, and what the server does on each database the other tests check on both."""
    if live_database.engine.dialect.name != "sqlite":
        pytest.skip("the walkthrough runs on SQLite, as a reader's does")
    port = free_port()
    replacements = {
        "localhost:8000": f"127.0.0.1:{port}",
        "127.0.0.1:8000": f"127.0.0.1:{port}",
        "https://example.com/": f"{targets}/ok",
        "https://example.org/": f"{targets}/slow",
    }
    (tmp_path / ".venv").symlink_to(sys.prefix)
    (tmp_path / "examples").symlink_to(README.parent / "examples")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    url = live_database.engine.url.render_as_string(hide_password=False)
    with server_process(port, url):
        async with ready(port):
            for number, block in enumerate(b for b in blocks() if b.fence == "sh"):
                text = block.text
                for old, new in replacements.items():
                    text = text.replace(old, new)
                shell = await asyncio.create_subprocess_exec(
                    "bash",
                    "-c",
                    "set -euo pipefail\n" + text,
                    cwd=tmp_path,
                    env=environment,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, err = await asyncio.wait_for(shell.communicate(), 30)
                where = f"sh block {number + 1} (under {block.section!r})"
                report = f"\n--- block:\n{text}\n--- stdout:\n{out.decode()}\n--- stderr:\n{err.decode()}"
                assert shell.returncode == 0, f"{where} exited {shell.returncode}{report}"
                expected = block.expected()
                for old, new in replacements.items():
                    expected = [[piece.replace(old, new) for piece in line] for line in expected]
                missing = unmatched(out.decode(), expected)
                assert missing is None, f"{where} did not print {missing}{report}"
    assert (tmp_path / "urls.txt").read_text().splitlines()[0] == "# pages to check"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node is not installed: the js blocks go unparsed")
async def test_the_javascript_snippets_parse(tmp_path: Path) -> None:
    snippets = [block for block in blocks() if block.fence == "js"]
    assert snippets
    for number, block in enumerate(snippets):
        script = tmp_path / f"snippet-{number}.mjs"
        script.write_text(block.text)
        node = await asyncio.create_subprocess_exec(
            "node", "--check", str(script), stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(node.communicate(), 30)
        assert node.returncode == 0, f"js block {number + 1} (under {block.section!r}): {err.decode()}"
