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
  healthcheck-config  HEALTHCHECK reads the configuration the daemon (ENTRYPOINT + CMD `run`)
                   reads: the same --config/-c, or both none and the same DEVIN_ORCH_CONFIG;
                   no --port of its own; that file is COPY'd into the image and, when its source
                   is in the context, does not disable metrics or pick a random port
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


def env_of(stage: Stage) -> dict[str, str]:
    """The final values of the stage's ENV instructions (NAME=value pairs or `ENV NAME value`)."""
    values: dict[str, str] = {}
    for ins in stage.instructions:
        if ins.keyword != "ENV" or not ins.args:
            continue
        pairs = re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)', ins.args)
        if pairs:
            for name, value in pairs:
                values[name] = value[1:-1] if value.startswith('"') else value
        else:
            name, _, value = ins.args.partition(" ")
            values[name] = value.strip()
    return values


def config_of(argv: list[str], env: dict[str, str]) -> tuple[str | None, str]:
    """The configuration a devin-orch command line reads, and where that was decided."""
    for index, word in enumerate(argv):
        if word in ("--config", "-c") and index + 1 < len(argv):
            return argv[index + 1], f"{word} {argv[index + 1]}"
        if word.startswith("--config="):
            return word.split("=", 1)[1], word
    if "DEVIN_ORCH_CONFIG" in env:
        return env["DEVIN_ORCH_CONFIG"], f"DEVIN_ORCH_CONFIG={env['DEVIN_ORCH_CONFIG']}"
    return None, "no --config and no DEVIN_ORCH_CONFIG"


def copied_to(stage: Stage, destination: str, context: str) -> tuple[Instruction, str | None] | None:
    """The final stage's COPY/ADD that puts a file at `destination`, and its source in the
    context (None when it comes from another stage)."""
    found = None
    for ins in stage.instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        flags, rest = split_flags(ins.args)
        words = exec_form(rest) or rest.split()
        if len(words) < 2:
            continue
        target = words[-1]
        for source in words[:-1]:
            path = target + os.path.basename(source) if target.endswith("/") else target
            if os.path.normpath(path) == os.path.normpath(destination):
                from_stage = any(flag.startswith("--from") for flag in flags)
                found = (ins, None if from_stage else os.path.join(context, os.path.normpath(source).lstrip("/")))
    return found


def metrics_problem(config_path: str) -> str | None:
    """Why `devin-orch healthcheck` could never pass with this configuration, if it cannot."""
    try:
        import yaml  # python3-yaml (scripts/setup.sh)
    except ImportError:
        return None
    try:
        with open(config_path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as error:
        return f"cannot read {config_path}: {error}"
    metrics = document.get("metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, dict):
        return None
    if metrics.get("enabled") is False:
        return "metrics.enabled is false: there is no /healthz to ask"
    if metrics.get("port") == 0:
        return "metrics.port is 0 (random): healthcheck cannot know the port"
    return None


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
        else:
            check_health_config(final, check, argv, context, report)

    volumes = by_keyword.get("VOLUME", [])
    declared = [v for ins in volumes for v in (exec_form(ins.args) or ins.args.split())]
    if "/var/lib/devin-orch" not in [v.rstrip("/") for v in declared]:
        report(final.line, "volume", "the final stage does not declare VOLUME /var/lib/devin-orch")
    for ins in volumes:
        for v in exec_form(ins.args) or ins.args.split():
            if re.search(r"\.db$", v):
                report(ins.line, "volume", f"VOLUME {v} is a file: SQLite's WAL needs its directory")

    return problems


def check_health_config(final: Stage, check: Instruction, health_argv: list[str], context: str,
                        report) -> None:
    """HEALTHCHECK must ask the daemon the image runs: the same configuration, its port."""
    if any(word == "--port" or word.startswith("--port=") for word in health_argv):
        report(check.line, "healthcheck-config",
               "HEALTHCHECK passes --port: the port must come from the configuration the daemon reads")
    entrypoints = [ins for ins in final.instructions if ins.keyword == "ENTRYPOINT"]
    cmds = [ins for ins in final.instructions if ins.keyword == "CMD"]
    forms = [exec_form(ins.args) for ins in entrypoints[-1:] + cmds[-1:]]
    if any(form is None for form in forms):
        return  # entrypoint-exec says so; a shell form's words are not the daemon's argv
    daemon = [word for form in forms for word in form]
    if "run" not in daemon:
        report(check.line, "healthcheck-config",
               "ENTRYPOINT + CMD do not run `devin-orch run`: nothing says which configuration the daemon reads")
        return
    env = env_of(final)
    daemon_config, daemon_source = config_of(daemon[daemon.index("run") + 1:], env)
    health_config, health_source = config_of(health_argv[2:], env)
    if daemon_config != health_config:
        report(check.line, "healthcheck-config",
               f"HEALTHCHECK reads {health_config or 'the default configuration'} ({health_source}), "
               f"the daemon {daemon_config or 'the default configuration'} ({daemon_source})")
        return
    if daemon_config is None:
        return
    copy = copied_to(final, daemon_config, context)
    if copy is None:
        report(check.line, "healthcheck-config",
               f"{daemon_config}, the configuration of CMD and HEALTHCHECK, is not copied into the image")
        return
    instruction, source = copy
    if source is not None and os.path.isfile(source):
        problem = metrics_problem(source)
        if problem:
            report(instruction.line, "healthcheck-config", f"{daemon_config} (from {source}): {problem}")


GOOD = """\
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
COPY src ./src
FROM debian:bookworm-slim
COPY --from=build /src/a /usr/bin/devin-orch
COPY config/x.yaml /etc/x.yaml
USER 10001:10001
VOLUME ["/var/lib/devin-orch"]
HEALTHCHECK --interval=30s CMD ["/usr/bin/devin-orch", "healthcheck", "--config", "/etc/x.yaml"]
ENTRYPOINT ["/usr/bin/devin-orch"]
CMD ["run", "--config", "/etc/x.yaml"]
"""
HEALTH = 'HEALTHCHECK --interval=30s CMD ["/usr/bin/devin-orch", "healthcheck", "--config", "/etc/x.yaml"]'


# Each case: one edit of GOOD (or of the .dockerignore) and the one rule it must trip.
BAD_CASES = [
    ("from-pinned", GOOD.replace("debian:bookworm-slim", "debian:latest")),
    ("from-pinned", GOOD.replace("debian:bookworm AS", "debian AS")),
    ("from-pinned", GOOD.replace("debian:bookworm-slim", "debian:bullseye-slim")),
    ("user-numeric", GOOD.replace("USER 10001:10001", "USER devin")),
    ("user-numeric", GOOD.replace("USER 10001:10001", "USER 0")),
    ("user-numeric", GOOD.replace("USER 10001:10001\n", "")),
    ("entrypoint-exec", GOOD.replace('ENTRYPOINT ["/usr/bin/devin-orch"]', "ENTRYPOINT /usr/bin/devin-orch")),
    ("entrypoint-exec", GOOD.replace('CMD ["run", "--config", "/etc/x.yaml"]', "CMD run")),
    ("healthcheck", GOOD.replace(HEALTH + "\n", "")),
    ("healthcheck", GOOD.replace('CMD ["/usr/bin/devin-orch", "healthcheck", "--config", "/etc/x.yaml"]', "CMD curl -f localhost")),
    ("volume", GOOD.replace('VOLUME ["/var/lib/devin-orch"]', 'VOLUME ["/var/lib/devin-orch/devin-orch.db"]')),
    ("add-url", GOOD.replace("COPY src ./src", "ADD https://example.com/x.tar.gz /x\nCOPY src ./src")),
    ("heredoc", GOOD.replace("COPY src ./src", "RUN <<EOF\necho\nEOF\nCOPY src ./src")),
    ("apt-hygiene", GOOD.replace(" --no-install-recommends", "")),
    ("apt-hygiene", GOOD.replace(" && rm -rf /var/lib/apt/lists/*", "")),
    ("secret-env", GOOD.replace("USER 10001:10001", "ENV DEVIN_API_KEY=cog_123\nUSER 10001:10001")),
    ("copy-source", GOOD.replace("COPY src ./src", "COPY missing ./missing")),
    # The daemon and its health check must read one configuration.
    ("healthcheck-config", GOOD.replace('CMD ["run", "--config", "/etc/x.yaml"]', 'CMD ["run", "--config", "/etc/y.yaml"]')),
    ("healthcheck-config", GOOD.replace('CMD ["run", "--config", "/etc/x.yaml"]', 'CMD ["run"]')),
    ("healthcheck-config", GOOD.replace('"--config", "/etc/x.yaml"]\nENTRYPOINT', '"-c", "/etc/x.yaml", "--port", "9000"]\nENTRYPOINT')),
    ("healthcheck-config", GOOD.replace('CMD ["run", "--config", "/etc/x.yaml"]', 'CMD ["status", "--config", "/etc/x.yaml"]')),
    ("healthcheck-config", GOOD.replace("COPY config/x.yaml /etc/x.yaml\n", "")),
    ("healthcheck-config", GOOD.replace('"healthcheck", "--config", "/etc/x.yaml"', '"healthcheck"')
                                .replace('CMD ["run", "--config", "/etc/x.yaml"]', 'CMD ["run"]')
                                .replace("USER 10001", "ENV DEVIN_ORCH_CONFIG=/etc/z.yaml\nUSER 10001")),
]


def self_test() -> int:
    failures = 0
    with tempfile.TemporaryDirectory() as context:
        os.makedirs(os.path.join(context, "src"))
        with open(os.path.join(context, "src", "main.cpp"), "w", encoding="utf-8") as handle:
            handle.write("int main() {}\n")
        os.makedirs(os.path.join(context, "config"))
        config = os.path.join(context, "config", "x.yaml")
        dockerfile = os.path.join(context, "Dockerfile")

        def write_config(metrics: str) -> None:
            with open(config, "w", encoding="utf-8") as handle:
                handle.write("api:\n  org_id: org-x\nmetrics:\n" + metrics)

        def run(text: str, ignore: str, metrics: str = "  port: 9464\n") -> list[str]:
            write_config(metrics)
            with open(dockerfile, "w", encoding="utf-8") as handle:
                handle.write(text)
            with open(os.path.join(context, ".dockerignore"), "w", encoding="utf-8") as handle:
                handle.write(ignore)
            return lint(dockerfile, context)

        allow = "*\n!src\n!config\n**/*.db\n"
        port = "  port: 9464\n"
        with_env = (GOOD.replace('"healthcheck", "--config", "/etc/x.yaml"', '"healthcheck"')
                    .replace('CMD ["run", "--config", "/etc/x.yaml"]', 'CMD ["run"]')
                    .replace("USER 10001", "ENV DEVIN_ORCH_CONFIG=/etc/x.yaml\nUSER 10001"))
        cases = [(None, GOOD, allow, port)] + [(rule, text, allow, port) for rule, text in BAD_CASES] + [
            ("copy-source", GOOD, "*\n!include\n", port),      # src not re-included
            ("copy-source", GOOD, "src/*.cpp\n", port),        # every file in src excluded
            (None, GOOD, "*\n!src\n!config\nsrc/*.db\n", port),  # a pattern excluding nothing used
            (None, with_env, allow, port),                     # both read DEVIN_ORCH_CONFIG
            (None, GOOD.replace("/etc/x.yaml\nUSER", "/etc/\nUSER"), allow, port),  # COPY into a directory
            ("healthcheck-config", GOOD, allow, "  port: 0\n"),
            ("healthcheck-config", GOOD, allow, "  enabled: false\n"),
        ]
        for number, (rule, text, ignore, metrics) in enumerate(cases):
            problems = run(text, ignore, metrics)
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
