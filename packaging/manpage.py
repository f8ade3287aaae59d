#!/usr/bin/env python3
# Writes the man page of a built program from its own --help texts: the main help and each
# command's, so the help texts stay the one source. Used at build time by cmake/packaging.cmake.
"""Usage: manpage.py --binary PATH --date DATE --output FILE [--section 1]
                    [--file PATH=TEXT]... [--see-also TEXT]...

Runs `PATH --help`, `PATH --version` and `PATH COMMAND --help` for every command the main help
lists (an indented `name  summary` line under a heading that ends with ':'), and writes roff:

  NAME         the main help's first line (`prog: summary`)
  SYNOPSIS     its Usage: lines
  DESCRIPTION  the rest of the main help, but for a paragraph starting `Exit codes:`
  COMMANDS     one subsection per command with its whole --help
  EXIT STATUS  that paragraph
  FILES, SEE ALSO  from --file and --see-also (facts of the package, not of the help)

DATE is an RFC 2822 date (a changelog trailer's) or YYYY-MM-DD, so the page does not change
with the day it is built. Help text is converted line by line: `Usage:` lines become synopsis
lines, indented `term  description` lines (a term starting with '-', or a command name in the
main help's lists) become tagged paragraphs, other indented lines stay as they are (no-fill),
and the rest is filled text. Whatever is not recognised is kept, never dropped.
"""
from __future__ import annotations

import argparse
import datetime
import email.utils
import re
import subprocess
import sys

ENTRY = re.compile(r"^( {2,})(\S(?:.*?\S)?) {2,}(\S.*)$")
COMMAND_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def escape(text: str) -> str:
    """Roff-escapes text: backslashes, minus signs (options must copy as ASCII '-')."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def line_start(text: str) -> str:
    """A text line must not start with a control character ('.' or "'")."""
    return "\\&" + text if text[:1] in (".", "'") else text


def styled_term(term: str) -> str:
    """`-c, --config FILE` -> options bold, placeholders (FILE, KEY, <command>) italic."""
    out = []
    for token in re.split(r"([ ,|\[\]=]+)", term):
        if not token or re.fullmatch(r"[ ,|\[\]=]+", token):
            out.append(escape(token))
        elif token.startswith("-"):
            out.append("\\fB" + escape(token) + "\\fR")
        elif re.fullmatch(r"[A-Z][A-Z0-9_./]*|<[^>]+>", token):
            out.append("\\fI" + escape(token.strip("<>")) + "\\fR")
        else:
            out.append(escape(token))
    return "".join(out)


def synopsis(line: str, program: str) -> str:
    """One usage line: the program and its command words bold, the rest styled as a term."""
    words = line.split(" ")
    lead = [words[0]]
    for word in words[1:]:
        if COMMAND_NAME.fullmatch(word) and len(lead) < 2:
            lead.append(word)
        else:
            break
    rest = " ".join(words[len(lead):])
    head = "\\fB" + escape(" ".join(lead)) + "\\fR"
    return line_start(head + (" " + styled_term(rest) if rest else ""))


def to_roff(text: str, program: str, commands_are_terms: bool = False) -> list[str]:
    """Converts one help text (without its NAME line) to roff lines."""
    out: list[str] = []
    mode = "para"         # para (filled), entry (.TP body), pre (no-fill)
    column = None         # where the descriptions of the current list start
    entry_indent = 0
    need_paragraph = True
    in_usage = False

    def close_pre() -> None:
        nonlocal mode, need_paragraph
        if mode == "pre":
            out.extend([".fi", ".RE"])
            mode, need_paragraph = "para", True

    for raw in text.rstrip("\n").split("\n"):
        line = raw.rstrip()
        if not line:
            close_pre()
            mode, column, need_paragraph, in_usage = "para", None, True, False
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()

        if body.startswith("Usage: ") and indent == 0:
            close_pre()
            out.extend([".PP", synopsis(body[len("Usage: "):], program)])
            in_usage, need_paragraph = True, False
            continue
        if in_usage and indent > 0 and body.startswith(program):
            out.extend([".br", synopsis(body, program)])
            continue
        in_usage = False

        if indent >= 2:
            match = ENTRY.match(line)
            term = description = None
            if match:
                term, description = match.group(2), match.group(3)
            elif column and body.startswith("-") and len(line) > column \
                    and line[column - 1] == " " and line[column] != " ":
                term, description = line[:column].strip(), line[column:].strip()
            if term is not None and (term.startswith("-") or
                                     (commands_are_terms and COMMAND_NAME.fullmatch(term))):
                close_pre()
                column = len(line) - len(description)
                entry_indent = indent
                out.extend([".TP", line_start(styled_term(term)), line_start(escape(description))])
                mode, need_paragraph = "entry", True
                continue
            if mode == "entry" and column and indent > entry_indent and not body.startswith("-"):
                out.append(line_start(escape(body)))
                continue
            if mode != "pre":
                out.extend([".RS", ".nf"])
                mode = "pre"
            out.append(line_start(escape(line[2:])))
            continue

        close_pre()
        if mode == "entry" or need_paragraph or body.startswith("Exit codes:"):
            out.append(".PP")
            mode, need_paragraph = "para", False
        column = None
        out.append(line_start(escape(body)))
    close_pre()
    return out


def run(binary: str, *args: str) -> str:
    result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        sys.exit(f"manpage.py: `{binary} {' '.join(args)}` exited {result.returncode} "
                 f"with no usable output: {result.stderr.strip()}")
    return result.stdout


def listed_commands(main_help: str) -> list[str]:
    """The names of the indented `name  summary` lines under headings ending with ':'."""
    names: list[str] = []
    under_heading = False
    for line in main_help.split("\n"):
        if line and not line.startswith(" "):
            under_heading = line.rstrip().endswith(":") and not line.startswith("Usage:")
            continue
        match = ENTRY.match(line)
        if under_heading and match and COMMAND_NAME.fullmatch(match.group(2)):
            names.append(match.group(2))
    return names


def page_date(text: str) -> str:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return text
    return email.utils.parsedate_to_datetime(text).astimezone(datetime.timezone.utc).strftime("%Y-%m-%d")


def build_page(binary: str, section: str, date: str, files: list[str], see_also: list[str]) -> str:
    main_help = run(binary, "--help")
    version = run(binary, "--version").strip()
    lines = main_help.split("\n")
    first = lines[0].strip()
    program, sep, summary = first.partition(": ")
    if not sep or " " in program:
        sys.exit(f"manpage.py: the main help's first line is not 'program: summary': {first!r}")
    summary = summary.rstrip(".")
    rest = "\n".join(lines[1:])

    # The main help's `Exit codes:` paragraph (to its end or the next blank line) is EXIT STATUS.
    exit_status = ""
    match = re.search(r"(?m)^Exit codes:.*(?:\n(?!\n).+)*", rest)
    if match:
        exit_status = match.group(0)[len("Exit codes:"):].strip()
        rest = rest[: match.start()] + rest[match.end():]

    usage_lines = [line for line in rest.split("\n") if line.startswith("Usage: ")]
    rest = "\n".join(line for line in rest.split("\n") if not line.startswith("Usage: "))

    out = [
        f'.\\" Generated by packaging/manpage.py from `{program} --help` and each command\'s --help;',
        '.\\" edit the help texts, not this file.',
        f'.TH {escape(program.upper())} {section} "{date}" "{escape(version)}" "User Commands"',
        # Left-aligned and unhyphenated, like the terminal help: option names stay whole.
        ".ad l",
        ".nh",
        ".SH NAME",
        f"{escape(program)} \\- {escape(summary)}",
        ".SH SYNOPSIS",
    ]
    for index, usage in enumerate(usage_lines):
        if index:
            out.append(".br")
        out.append(synopsis(usage[len("Usage: "):], program))
    out.append(".SH DESCRIPTION")
    out.append(f"\\fB{escape(program)}\\fR {escape(summary)}.")
    # Headings of the main help's command lists become subsections.
    described = []
    for line in rest.split("\n"):
        if line and not line.startswith(" ") and line.rstrip().endswith(":"):
            described.append("")
            described.append(f"\x00SS {line.rstrip()[:-1]}")
        else:
            described.append(line)
    for roff in to_roff("\n".join(described), program, commands_are_terms=True):
        if roff.startswith("\x00SS "):
            out.append(f'.SS "{escape(roff[4:])}"')
        else:
            out.append(roff)

    commands = listed_commands(main_help)
    if not commands:
        sys.exit("manpage.py: the main help lists no command")
    out.append(".SH COMMANDS")
    for command in commands:
        out.append(f'.SS "{escape(program)} {escape(command)}"')
        out.extend(to_roff(run(binary, command, "--help"), program))

    if exit_status:
        out.extend([".SH \"EXIT STATUS\"", line_start(escape(" ".join(exit_status.split())))])
    if files:
        out.append(".SH FILES")
        for item in files:
            path, _, text = item.partition("=")
            out.extend([".TP", f"\\fI{escape(path)}\\fR", line_start(escape(text))])
    if see_also:
        out.extend([".SH \"SEE ALSO\"", line_start(escape(" ".join(see_also)))])
    # Drop a paragraph macro that nothing follows, or that another one follows at once.
    tidy: list[str] = []
    for roff in out:
        if tidy and tidy[-1] == ".PP" and (roff.startswith(".SH") or roff.startswith(".SS")
                                           or roff in (".PP", ".TP")):
            tidy.pop()
        tidy.append(roff)
    return "\n".join(tidy) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--section", default="1")
    parser.add_argument("--date", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--file", action="append", default=[], metavar="PATH=TEXT")
    parser.add_argument("--see-also", action="append", default=[], metavar="TEXT")
    options = parser.parse_args()
    page = build_page(options.binary, options.section, page_date(options.date), options.file,
                      options.see_also)
    with open(options.output, "w", encoding="utf-8") as handle:
        handle.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
