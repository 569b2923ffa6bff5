"""MkDocs hook: the command-line reference page (``reference/cli.md``), generated from ``nas.cli.build_parser()``.

The page is written at every build from the parser the ``nas`` command itself uses, so an option added, renamed
or removed in ``nas/cli.py`` shows in the docs with the next ``make docs``; nothing is copied by hand. The page is
added to the build as a generated file (it does not exist in ``docs/``). ``python docs/hooks.py`` prints it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI_PAGE = "reference/cli.md"


def _parser() -> argparse.ArgumentParser:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # this checkout's nas, whatever is installed
    from nas.cli import build_parser

    return build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """name -> (one-line help, sub-parser), in the order ``nas --help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), p) for name, p in action.choices.items()}
    return {}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            takes = action.nargs != 0
            metavar = action.metavar or action.dest.upper()
            name = ", ".join(f"`{o} {metavar}`" if takes else f"`{o}`" for o in action.option_strings)
        else:
            name = f"`{action.metavar or action.dest}`"
        parts = [action.help or ""]
        if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
            parts.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
        if action.required and action.option_strings:
            parts.append("required")
        rows.append(f"| {name} | {_cell('; '.join(p for p in parts if p))} |")
    return rows


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=78)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def cli_markdown() -> str:
    """The reference page: ``nas``'s own help, then one section per command with its usage, options, examples."""
    parser = _parser()
    intro = ("The `nas` command (installed into `.venv/bin/nas` by `make install`). This page is generated from the "
             "parser itself (`nas.cli.build_parser()`) at every `make docs`, so it lists exactly the options of "
             "this version; `nas COMMAND --help` prints the same.")
    lines = ["# Command line", "", intro, "", "```text", _usage(parser), "```", "", parser.description or "", ""]
    if parser.epilog:
        lines += ["```text", parser.epilog.strip(), "```", ""]
    lines += ["| command | what it does |", "| --- | --- |"]
    commands = _subcommands(parser)
    lines += [f"| [`nas {name}`](#nas-{name}) | {_cell(text)} |" for name, (text, _) in commands.items()]
    errors = ("Bad input exits with status 2 and one line `nas <command>: error: <message>` naming the field, the "
              "rule and the value received, before anything is trained or stored.")
    lines += ["", errors, ""]
    for name, (text, sub) in commands.items():
        lines += [f"## nas {name}", "", text[:1].upper() + text[1:] + ".", "", "```text", _usage(sub), "```", "",
                  "| argument | meaning |", "| --- | --- |", *_option_rows(sub), ""]
        if sub.epilog:
            lines += ["```text", sub.epilog.strip(), "```", ""]
    return "\n".join(lines)


_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):(<code>)")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Drop the Sphinx roles of the docstrings (``:class:`Study``` renders as ``:class:`` before the code)."""
    return _ROLE.sub(r"\1", html)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated CLI page to the files MkDocs builds."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, CLI_PAGE, content=cli_markdown()))
    return files


if __name__ == "__main__":
    print(cli_markdown())
