#!/usr/bin/env python3
# Offline lint of the Dockerfile and .dockerignore: the project's image rules, checked without a
# network or a container engine, so CI can gate on it. --self-test proves each rule can fail.
"""Usage: lint_dockerfile.py [--context DIR] [--dockerfile FILE] | --self-test

Rules (all stages unless noted):
  from-pinned      every FROM names a bookworm tag (debian:bookworm, debian:bookworm-slim, ...)
                   or an earlier stage; no :latest, no bare image names
  user-numeric     the final stage ends with USER <uid>[:<gid>], numeric and not 0
  entrypoint-exec  the final stage has an exec-form (JSON array) ENTRYPOINT; CMD, if any, too
  healthcheck      the final stage has an exec-form HEALTHCHECK running `devin-orch healthcheck`
  volume           the final stage declares VOLUME /var/lib/devin-orch (a directory)
  add-url          no ADD of a URL or git repository (unverified downloads)
  heredoc          no `<<` heredocs in RUN (buildah 1.28 cannot build them)
  apt-hygiene      apt-get install uses --no-install-recommends; the same RUN drops apt lists
  secret-env       no ENV/ARG that bakes an API key, token or password into the image
  copy-source      every COPY/ADD source from the context exists and survives .dockerignore
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    image: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)


def parse(text: str) -> list[Instruction]:
    """Joins backslash continuations, drops comments and blank lines."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    if pending:
        joined = " ".join(pending)
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    return instructions


def stages_of(instructions: list[Instruction]) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            image = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name, instruction.line))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def exec_form(args: str) -> list[str] | None:
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def split_flags(args: str) -> tuple[list[str], str]:
    """Leading --flag=value words of COPY/ADD/HEALTHCHECK, and the rest."""
    flags: list[str] = []
    rest = args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.lstrip()
    return flags, rest


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus **) as a regex over slash paths."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body[:1] in ("^", "!"):
                    body = "^" + body[1:]
                out.append("[" + body + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def load_ignore(context: str) -> list[tuple[bool, re.Pattern[str]]]:
    path = os.path.join(context, ".dockerignore")
    rules: list[tuple[bool, re.Pattern[str]]] = []
    if not os.path.exists(path):
        return rules
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line[1:] if negate else line).lstrip("/")
            rules.append((negate, pattern_regex(pattern)))
    return rules


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negate, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            result = not negate
    return result


SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|PASSWORD|SECRET)", re.IGNORECASE)


def lint(dockerfile: str, context: str) -> list[str]:
    with open(dockerfile, encoding="utf-8") as handle:
        text = handle.read()
    instructions = parse(text)
    stages = stages_of(instructions)
    problems: list[str] = []

    def report(line: int, rule: str, message: str) -> None:
        problems.append(f"{dockerfile}:{line}: [{rule}] {message}")

    if not stages:
        report(1, "from-pinned", "no FROM instruction")
        return problems

    known_stages: set[str] = set()
    for stage in stages:
        image = stage.image
        if image.lower() in known_stages:
            pass
        elif ":" not in image.split("/")[-1] and "@" not in image:
            report(stage.line, "from-pinned", f"FROM {image} has no tag; pin it to a bookworm tag")
        elif image.endswith(":latest"):
            report(stage.line, "from-pinned", f"FROM {image} uses :latest; pin it to a bookworm tag")
        elif "bookworm" not in image.split(":", 1)[-1]:
            report(stage.line, "from-pinned", f"FROM {image} is not a bookworm image")
        if stage.name:
            known_stages.add(stage.name.lower())

    rules = load_ignore(context)
    for stage in stages:
        for ins in stage.instructions:
            if ins.keyword == "ADD":
                _, rest = split_flags(ins.args)
                words = exec_form(rest) or rest.split()
                for source in words[:-1]:
                    if re.match(r"^(https?|ftp|git)://|^git@|\.git$", source):
                        report(ins.line, "add-url", f"ADD {source}: download in RUN with a checksum, or COPY")
            if ins.keyword == "RUN" and "<<" in ins.args:
                report(ins.line, "heredoc", "RUN heredoc (<<) is not supported by buildah 1.28")
            if ins.keyword == "RUN" and re.search(r"apt-get\s+(-\S+\s+)*install", ins.args):
                if "--no-install-recommends" not in ins.args:
                    report(ins.line, "apt-hygiene", "apt-get install without --no-install-recommends")
                if "/var/lib/apt/lists" not in ins.args:
                    report(ins.line, "apt-hygiene", "apt-get install without rm -rf /var/lib/apt/lists/* in the same RUN")
            if ins.keyword in ("ENV", "ARG") and ins.args:
                # NAME=value pairs, or the legacy `ENV NAME value` form.
                names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", ins.args) or [ins.args.split()[0]]
                for name in names:
                    if SECRET_NAME.search(name) and name != "CREDENTIALS_DIRECTORY":
                        report(ins.line, "secret-env", f"{ins.keyword} {name} would bake a secret into the image; use /run/secrets")
            if ins.keyword in ("COPY", "ADD"):
                flags, rest = split_flags(ins.args)
                if any(flag.startswith("--from") for flag in flags):
                    continue
                words = exec_form(rest) or rest.split()
                for source in words[:-1]:
                    if re.match(r"^[a-z]+://", source) or any(ch in source for ch in "*?["):
                        continue
                    relative = os.path.normpath(source).lstrip("/")
                    path = os.path.join(context, relative)
                    if not os.path.exists(path):
                        report(ins.line, "copy-source", f"{ins.keyword} source {source} does not exist in {context}")
                    elif ignored(relative, rules):
                        report(ins.line, "copy-source", f"{ins.keyword} source {source} is excluded by .dockerignore")
                    elif os.path.isdir(path):
                        kept = [os.path.relpath(os.path.join(d, f), context)
                                for d, _, files in os.walk(path) for f in files]
                        if not any(not ignored(k, rules) for k in kept):
                            report(ins.line, "copy-source", f"{ins.keyword} source {source}: .dockerignore excludes every file in it")

    final = stages[-1]
    by_keyword: dict[str, list[Instruction]] = {}
    for ins in final.instructions:
        by_keyword.setdefault(ins.keyword, []).append(ins)

    users = by_keyword.get("USER", [])
    if not users:
        report(final.line, "user-numeric", "the final stage has no USER: it would run as root")
    else:
        user = users[-1]
        match = re.fullmatch(r"(\d+)(?::(\d+))?", user.args)
        if not match:
            report(user.line, "user-numeric", f"USER {user.args} is not numeric uid[:gid] (Kubernetes runAsNonRoot needs a number)")
        elif int(match.group(1)) == 0:
            report(user.line, "user-numeric", "USER 0 is root")

    entrypoints = by_keyword.get("ENTRYPOINT", [])
    if not entrypoints:
        report(final.line, "entrypoint-exec", "the final stage has no ENTRYPOINT")
    elif exec_form(entrypoints[-1].args) is None:
        report(entrypoints[-1].line, "entrypoint-exec", "ENTRYPOINT is not exec form: signals would go to /bin/sh, not the daemon")
    for cmd in by_keyword.get("CMD", [])[-1:]:
        if exec_form(cmd.args) is None:
            report(cmd.line, "entrypoint-exec", "CMD is not exec form (a JSON array)")

    healthchecks = by_keyword.get("HEALTHCHECK", [])
    if not healthchecks:
        report(final.line, "healthcheck", "the final stage has no HEALTHCHECK")
    else:
        check = healthchecks[-1]
        _, rest = split_flags(check.args)
        keyword, _, command = rest.partition(" ")
        argv = exec_form(command.strip()) if keyword.upper() == "CMD" else None
        if argv is None:
            report(check.line, "healthcheck", "HEALTHCHECK must be CMD in exec form (slim images need no shell for it)")
        elif not (argv[0].endswith("devin-orch") and "healthcheck" in argv[1:2]):
            report(check.line, "healthcheck", "HEALTHCHECK must run `devin-orch healthcheck`")

    volumes = by_keyword.get("VOLUME", [])
    declared = [v for ins in volumes for v in (exec_form(ins.args) or ins.args.split())]
    if "/var/lib/devin-orch" not in [v.rstrip("/") for v in declared]:
        report(final.line, "volume", "the final stage does not declare VOLUME /var/lib/devin-orch")
    for ins in volumes:
        for v in exec_form(ins.args) or ins.args.split():
            if re.search(r"\.db$", v):
                report(ins.line, "volume", f"VOLUME {v} is a file: SQLite's WAL needs its directory")

    return problems


GOOD = """\
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
COPY src ./src
FROM debian:bookworm-slim
COPY --from=build /src/a /usr/bin/devin-orch
USER 10001:10001
VOLUME ["/var/lib/devin-orch"]
HEALTHCHECK --interval=30s CMD ["/usr/bin/devin-orch", "healthcheck", "--config", "/etc/x.yaml"]
ENTRYPOINT ["/usr/bin/devin-orch"]
CMD ["run"]
"""

# Each case: one edit of GOOD (or of the .dockerignore) and the one rule it must trip.
BAD_CASES = [
    ("from-pinned", GOOD.replace("debian:bookworm-slim", "debian:latest")),
    ("from-pinned", GOOD.replace("debian:bookworm AS", "debian AS")),
    ("from-pinned", GOOD.replace("debian:bookworm-slim", "debian:bullseye-slim")),
    ("user-numeric", GOOD.replace("USER 10001:10001", "USER devin")),
    ("user-numeric", GOOD.replace("USER 10001:10001", "USER 0")),
    ("user-numeric", GOOD.replace("USER 10001:10001\n", "")),
    ("entrypoint-exec", GOOD.replace('ENTRYPOINT ["/usr/bin/devin-orch"]', "ENTRYPOINT /usr/bin/devin-orch")),
    ("entrypoint-exec", GOOD.replace('CMD ["run"]', "CMD run")),
    ("healthcheck", GOOD.replace('HEALTHCHECK --interval=30s CMD ["/usr/bin/devin-orch", "healthcheck", "--config", "/etc/x.yaml"]\n', "")),
    ("healthcheck", GOOD.replace('CMD ["/usr/bin/devin-orch", "healthcheck", "--config", "/etc/x.yaml"]', "CMD curl -f localhost")),
    ("volume", GOOD.replace('VOLUME ["/var/lib/devin-orch"]', 'VOLUME ["/var/lib/devin-orch/devin-orch.db"]')),
    ("add-url", GOOD.replace("COPY src ./src", "ADD https://example.com/x.tar.gz /x\nCOPY src ./src")),
    ("heredoc", GOOD.replace("COPY src ./src", "RUN <<EOF\necho\nEOF\nCOPY src ./src")),
    ("apt-hygiene", GOOD.replace(" --no-install-recommends", "")),
    ("apt-hygiene", GOOD.replace(" && rm -rf /var/lib/apt/lists/*", "")),
    ("secret-env", GOOD.replace("USER 10001:10001", "ENV DEVIN_API_KEY=cog_123\nUSER 10001:10001")),
    ("copy-source", GOOD.replace("COPY src ./src", "COPY missing ./missing")),
]


def self_test() -> int:
    failures = 0
    with tempfile.TemporaryDirectory() as context:
        os.makedirs(os.path.join(context, "src"))
        with open(os.path.join(context, "src", "main.cpp"), "w", encoding="utf-8") as handle:
            handle.write("int main() {}\n")
        dockerfile = os.path.join(context, "Dockerfile")

        def run(text: str, ignore: str) -> list[str]:
            with open(dockerfile, "w", encoding="utf-8") as handle:
                handle.write(text)
            with open(os.path.join(context, ".dockerignore"), "w", encoding="utf-8") as handle:
                handle.write(ignore)
            return lint(dockerfile, context)

        allow = "*\n!src\n**/*.db\n"
        cases = [(None, GOOD, allow)] + [(rule, text, allow) for rule, text in BAD_CASES] + [
            ("copy-source", GOOD, "*\n!include\n"),     # src not re-included
            ("copy-source", GOOD, "src/*.cpp\n"),       # every file in src excluded
            (None, GOOD, "*\n!src\nsrc/*.db\n"),        # a pattern excluding nothing used
        ]
        for number, (rule, text, ignore) in enumerate(cases):
            problems = run(text, ignore)
            tripped = {re.search(r"\[([a-z-]+)\]", p).group(1) for p in problems}
            expected = {rule} if rule else set()
            if tripped != expected:
                failures += 1
                print(f"self-test case {number}: expected {sorted(expected)}, got {sorted(tripped)}")
                for p in problems:
                    print("   ", p)
    print(f"lint_dockerfile self-test: {len(cases) - failures}/{len(cases)} cases as expected")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--context", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    parser.add_argument("--dockerfile")
    parser.add_argument("--self-test", action="store_true")
    options = parser.parse_args()
    if options.self_test:
        return self_test()
    context = os.path.normpath(options.context)
    dockerfile = options.dockerfile or os.path.join(context, "Dockerfile")
    problems = lint(dockerfile, context)
    for problem in problems:
        print(problem)
    if problems:
        print(f"lint_dockerfile: {len(problems)} problem(s)")
        return 1
    print(f"lint_dockerfile: {dockerfile} OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
