"""The README and docs/ against the real code, so that an example which drifts fails here.

- `console` blocks are run line by line (`$ command`) in a scratch directory and their output
  must be what the block quotes;
- every `lsllama`, `spacy train`, `spacy project run` and `python SCRIPT.py` line of a shell
  block names a real command, real options, a real config key, a real project command and
  variable or a real script and its options;
- docs/cli.md names every option of every `lsllama` command, and nothing else;
- the README's Python usage example runs on a saved LS-LLaMA pipeline;
- relative links point at files and headings that exist.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.cli._util import parse_config_overrides
from weasel.util import load_project_config

from spacy_lsllama.cli.app import COMMANDS as COMMAND_MODULES
from spacy_lsllama.cli.app import TAKES_OVERRIDES, load_command

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
# The real commands (the app itself lists stand-ins and imports a command only to run it).
COMMANDS = {name: load_command(name) for name in COMMAND_MODULES}


def blocks(kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """(document name, code) of every fenced block of these kinds in the README and docs/."""
    found = []
    for path in DOCS:
        for kind, code in BLOCK.findall(path.read_text(encoding="utf-8")):
            if kind in kinds:
                found.append((str(path.relative_to(ROOT)), code))
    return found


def shell_lines(code: str) -> list[str]:
    """The commands of a shell block: continuations joined, prompts and comments dropped."""
    code = code.replace("\\\n", " ")
    lines = []
    for line in code.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("$ "):
            line = line[2:]
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def commands_in(line: str) -> list[list[str]]:
    """Each command of a line (`a | b`, `a && b`) as words, without redirections or `VAR=x`."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    words = iter(lexer)
    for word in words:
        if word in {"|", "||", "&&", ";", "&"}:
            commands.append([])
        elif set(word) <= set("<>&"):
            next(words, None)  # a redirection's target
        elif commands[-1] or not re.fullmatch(r"[A-Z_]+=\S*", word):
            commands[-1].append(word)
    return [command for command in commands if command]


SHELL_COMMANDS = [
    (name, command)
    for name, code in blocks(("bash", "console", "transcript"))
    for line in shell_lines(code)
    for command in commands_in(line)
]


def options(words: list[str]) -> list[str]:
    return [word.split("=", 1)[0] for word in words if word.startswith("-") and word != "-"]


# Console examples -----------------------------------------------------------------------------


@pytest.mark.parametrize("name,code", blocks(("console",)))
def test_console_examples_print_what_they_quote(name, code, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    steps = re.split(r"^\$ ", code, flags=re.M)[1:]
    assert steps, f"{name}: a console block without a `$ ` command"
    for step in steps:
        command, _, quoted = step.partition("\n")
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (result.stdout + result.stderr).strip() == quoted.strip(), f"{name}: $ {command}"


# Shell examples -------------------------------------------------------------------------------


def test_the_docs_have_shell_examples_of_every_kind_checked_below():
    programs = {" ".join(command[:3]) for _, command in SHELL_COMMANDS}
    assert {"python -m spacy"} <= programs
    assert any(command[0] == "lsllama" for _, command in SHELL_COMMANDS)


@pytest.mark.parametrize(
    "name,command", [(n, c) for n, c in SHELL_COMMANDS if c[0] == "lsllama"], ids=str
)
def test_lsllama_examples_use_real_commands_and_options(name, command):
    if command[1:] == ["--version"]:
        return
    assert command[1] in COMMANDS, f"{name}: no command {command[1]!r}: {command}"
    known = {opt for param in COMMANDS[command[1]].params for opt in param.opts} | {"--help"}
    overrides = command[1] in TAKES_OVERRIDES  # --section.key value, as in spacy train
    unknown = [
        opt for opt in options(command[2:]) if opt not in known and not (overrides and "." in opt)
    ]
    assert not unknown, f"{name}: {command[1]} has no {unknown}"


SPACY_TRAIN = [(n, c) for n, c in SHELL_COMMANDS if c[:4] == ["python", "-m", "spacy", "train"]]


@pytest.mark.parametrize("name,command", SPACY_TRAIN, ids=str)
def test_spacy_train_examples_override_keys_of_their_config(name, command):
    config = spacy.util.load_config(ROOT / command[4], interpolate=False)
    words = [word for word in command[5:] if not word.startswith("$")]
    cli_options = {"--output", "--gpu-id", "--code"}
    overrides = []
    for i, word in enumerate(words):
        if word.startswith("--") and word not in cli_options and "." in word:
            overrides += [word, words[i + 1]]
    for key in parse_config_overrides(overrides):
        section = config
        *path, last = key.split(".")
        for part in path:
            assert part in section, f"{name}: {command[4]} has no [{key.rsplit('.', 1)[0]}]"
            section = section[part]
        assert last in section, f"{name}: {command[4]} has no {key}"


SPACY_PROJECT = [(n, c) for n, c in SHELL_COMMANDS if c[:4] == ["python", "-m", "spacy", "project"]]


@pytest.mark.parametrize("name,command", SPACY_PROJECT, ids=str)
def test_spacy_project_examples_use_real_commands_and_variables(name, command, tmp_path):
    (tmp_path / "project.yml").write_bytes((ROOT / "project.yml").read_bytes())
    project = load_project_config(tmp_path)
    if command[4] == "run":
        runnable = {c["name"] for c in project["commands"]} | set(project["workflows"])
        assert command[5] in runnable, f"{name}: project.yml has no {command[5]!r}"
    for option in options(command[5:]):
        if option.startswith("--vars."):
            assert option.removeprefix("--vars.") in project["vars"], f"{name}: {option}"


SCRIPTS = [(n, c) for n, c in SHELL_COMMANDS if c[0] == "python" and c[1].endswith(".py")]


@pytest.mark.parametrize("name,command", SCRIPTS, ids=str)
def test_script_examples_use_real_scripts_and_options(name, command):
    assert (ROOT / command[1]).is_file(), f"{name}: no {command[1]}"
    usage = subprocess.run(
        [sys.executable, command[1], "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert usage.returncode == 0, usage.stderr
    listed = set(re.findall(r"(?<![\w-])--?[a-z][\w-]*", usage.stdout))
    unknown = [opt for opt in options(command[2:]) if opt not in listed]
    assert not unknown, f"{name}: {command[1]} has no {unknown}"


BASH_SCRIPTS = [
    (name, line)
    for name, code in blocks(("bash",))
    for line in shell_lines(code)
    if " bash " in f" {line}"
]


@pytest.mark.parametrize("name,line", BASH_SCRIPTS, ids=str)
def test_shell_script_examples_name_real_scripts_and_their_variables(name, line):
    words = shlex.split(line)
    script = ROOT / words[words.index("bash") + 1]
    assert script.is_file(), f"{name}: no {script}"
    for word in words[: words.index("bash")]:
        variable = word.split("=", 1)[0]
        assert variable in script.read_text(), f"{name}: {script.name} never reads {variable}"


# The CLI reference ----------------------------------------------------------------------------


def cli_reference_sections() -> dict[str, str]:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parts = re.split(r"^## lsllama (\S+)\n", text, flags=re.M)
    return {name: body.split("\n## ", 1)[0] for name, body in zip(parts[1::2], parts[2::2])}


def test_the_cli_reference_names_every_option_of_every_command_and_no_other():
    sections = cli_reference_sections()
    assert set(sections) == set(COMMANDS)
    for name, body in sections.items():
        real = {opt for param in COMMANDS[name].params for opt in param.opts if opt[0] == "-"}
        named = set(re.findall(r"`(--?[a-z][\w-]*)`", body))
        assert real - named == set(), f"docs/cli.md, lsllama {name}: undocumented"
        assert named - real == set(), f"docs/cli.md, lsllama {name}: not an option"


# The README's Python example ------------------------------------------------------------------


@pytest.mark.slow
def test_the_readme_usage_example_prints_what_the_readme_says(capsys):
    """The shipped pipeline, installed as a package, prints the README's output."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```\s*```text\n(.*?)```", readme, flags=re.S)
    assert example is not None, "README.md: a python block followed by its output"
    code, output = example.groups()
    assert 'spacy.load("en_lsllama_ner")' in code
    exec(code, {})
    assert capsys.readouterr().out.strip() == output.strip()


# Links ----------------------------------------------------------------------------------------


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading).lower().replace(" ", "-") for heading in headings}


def test_relative_links_point_at_existing_files_and_headings():
    for path in DOCS:
        text = BLOCK.sub("", path.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"\w+:", target):
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            assert resolved.exists(), f"{path.name}: broken link {target}"
            if anchor:
                assert anchor in anchors(resolved), f"{path.name}: no heading #{anchor}"


# Machine paths --------------------------------------------------------------------------------

MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|Users)/[\w.-]+")


def test_committed_docs_and_results_name_no_absolute_machine_paths():
    tracked = subprocess.run(
        ["git", "ls-files", "README.md", "docs", "benchmarks/results", "pipelines"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".png", ".safetensors"} or not path.is_file():
            continue
        for match in MACHINE_PATH.finditer(path.read_text(encoding="utf-8", errors="replace")):
            found.append(f"{name}: {match.group()}")
    assert not found, found[:10]
