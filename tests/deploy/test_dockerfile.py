"""The Dockerfile and .dockerignore, parsed (no Docker engine is needed or used).

Checked: a wheel built in one stage and installed offline in a slim final stage; pinned
base images; a numeric non-root USER that matches the manifests; the ENTRYPOINT and CMD
the Deployment relies on; no HEALTHCHECK, compilers, dev extras or tests in the image;
and a build context that holds what the build copies and nothing else.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import NamedTuple

import pytest
from packaging.specifiers import SpecifierSet

from autoscaler.config.schema import MetricsSettings
from autoscaler.loop.telemetry import REVISION_ENV

from .manifests import REPO, one

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
COMPILERS = {"gcc", "g++", "cc", "clang", "make", "build-essential", "cmake", "gfortran"}


class Instruction(NamedTuple):
    keyword: str
    arguments: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions: comments dropped, backslash continuations joined."""
    instructions, pending = [], ""
    for line in text.splitlines():
        if line.strip().startswith("#") or not (pending or line.strip()):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM."""
    out: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            out.append([])
        out[-1].append(instruction)
    return out


def arguments(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.arguments for i in stage if i.keyword == keyword]


def apt_installs(stage: list[Instruction]) -> set[str]:
    packages = set()
    for run in arguments(stage, "RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "install"]:
                packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


DOCKERFILE = parse((REPO / "Dockerfile").read_text())
BUILD, FINAL = stages(DOCKERFILE)[0], stages(DOCKERFILE)[-1]


def test_instructions_are_known_and_there_is_no_healthcheck() -> None:
    known = {"FROM", "ARG", "ENV", "WORKDIR", "COPY", "RUN", "LABEL", "USER", "EXPOSE", "ENTRYPOINT", "CMD"}
    assert {i.keyword for i in DOCKERFILE} <= known, "HEALTHCHECK or an unknown instruction"


def test_base_images_are_slim_and_pinned_to_a_version_or_digest() -> None:
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    stage_names = set()
    for stage in stages(DOCKERFILE):
        image, *alias = stage[0].arguments.split()
        if image in stage_names:
            continue
        match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim-\w+(@sha256:[0-9a-f]{64})?|python@sha256:[0-9a-f]{64}", image)
        assert match, f"unpinned or non-slim base image: {image}"
        if match.group(1):
            assert match.group(1) in requires, f"{image} is outside requires-python {requires}"
        if alias:
            assert alias[0].upper() == "AS"
            stage_names.add(alias[1])
    assert "latest" not in " ".join(i.arguments for i in DOCKERFILE if i.keyword == "FROM")


def test_the_wheel_is_built_in_the_first_stage_and_installed_offline_in_the_last() -> None:
    build_name = BUILD[0].arguments.split()[-1]
    assert len(stages(DOCKERFILE)) == 2
    assert any(run.startswith("pip wheel --wheel-dir /wheels .") for run in arguments(BUILD, "RUN"))
    copied = {source for copy in arguments(BUILD, "COPY") for source in copy.split()[:-1]}
    assert set(PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]) <= copied
    (install,) = [run for run in arguments(FINAL, "RUN") if "pip install" in run]
    assert f"from={build_name}" in install and "--no-index" in install and "--find-links=/wheels" in install
    assert install.split()[-1] == '"prescaler==${VERSION}"', "the project alone, at VERSION: no extras"


def test_final_stage_has_no_compiler_no_tests_and_no_source() -> None:
    assert apt_installs(FINAL) == {"libgomp1"}
    assert not COMPILERS & (apt_installs(BUILD) | apt_installs(FINAL))
    assert not arguments(FINAL, "COPY") and not arguments(FINAL, "ADD"), "the image gets the installed wheels only"
    assert "[dev]" not in " ".join(arguments(BUILD, "RUN") + arguments(FINAL, "RUN"))


def test_runs_as_the_numeric_non_root_user_the_manifests_expect(rendered) -> None:
    user = arguments(FINAL, "USER")[-1]
    assert re.fullmatch(r"\d+:\d+", user), f"USER {user} is not numeric uid:gid"
    uid, gid = map(int, user.split(":"))
    assert uid != 0 and gid != 0
    security = one(rendered["base"], "Deployment", "prescaler")["spec"]["template"]["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (uid, gid)


def test_entrypoint_cmd_and_port_match_the_deployment(rendered) -> None:
    (entrypoint,), (cmd,), (expose,) = (arguments(FINAL, k) for k in ("ENTRYPOINT", "CMD", "EXPOSE"))
    assert json.loads(entrypoint) == ["prescaler"]
    assert json.loads(cmd) == ["run", "--config", "/etc/prescaler/config.yaml"]
    container = one(rendered["base"], "Deployment", "prescaler")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == json.loads(cmd)
    assert int(expose) == MetricsSettings().port == container["ports"][0]["containerPort"]


def test_the_build_revision_reaches_build_info() -> None:
    """`--build-arg REVISION=…` becomes the environment variable prescaler_build_info reads its revision from."""
    assert "REVISION=unknown" in arguments(FINAL, "ARG")
    assert f"{REVISION_ENV}=$REVISION" in arguments(FINAL, "ENV")


# --- .dockerignore -------------------------------------------------------------------


def _pattern(glob: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(glob[i], re.escape(glob[i]))
            i += 1
    return re.compile(out)


def sent_to_builder(path: str, rules: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides."""
    prefixes = ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 2)]
    excluded = False
    for rule in rules:
        negated, glob = rule.startswith("!"), rule.lstrip("!")
        if any(_pattern(glob).fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return not excluded


IGNORE = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "LICENSE", "autoscaler/config/schema.py",
                                  "autoscaler/adapters/api_calls.py", "forecasting/__init__.py"])
def test_build_context_holds_what_the_build_copies(path: str) -> None:
    assert sent_to_builder(path, IGNORE)


def test_every_copied_source_is_in_the_build_context() -> None:
    for copy in arguments(BUILD, "COPY"):
        for source in copy.split()[:-1]:
            assert sent_to_builder(source, IGNORE), source


@pytest.mark.parametrize("path", ["tests/test_config.py", "tests/deploy/test_dockerfile.py", ".venv/bin/python",
                                  ".git/HEAD", "data/traces/nasa_jul95_10d.csv", "deploy/base/kustomization.yaml",
                                  "autoscaler/__pycache__/config.cpython-311.pyc", "forecasting/x.pyc", "Dockerfile"])
def test_build_context_leaves_out_everything_else(path: str) -> None:
    assert not sent_to_builder(path, IGNORE)


# --- one version, labels -------------------------------------------------------------


def args_of(stage: list[Instruction]) -> dict[str, str]:
    return dict(a.partition("=")[::2] for a in arguments(stage, "ARG"))


def labels_of(stage: list[Instruction]) -> dict[str, str]:
    (label,) = arguments(stage, "LABEL")
    return {key: value.strip('"') for key, _, value in (item.partition("=") for item in shlex.split(label, posix=False))}


def test_the_version_is_pyprojects_everywhere() -> None:
    """pyproject's `version` is the one source: the image's VERSION default, its label, the wheel it installs
    and `prescaler --version` all say the same."""
    version = PYPROJECT["project"]["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "a SemVer release version"
    assert args_of(FINAL)["VERSION"] == version
    assert labels_of(FINAL)["org.opencontainers.image.version"] == "${VERSION}"
    done = subprocess.run([sys.executable, "-m", "autoscaler.cli", "--version"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.stdout.strip() == f"prescaler {version}", done.stderr


def test_oci_labels_name_the_source_license_and_revision() -> None:
    labels = labels_of(FINAL)
    project = PYPROJECT["project"]
    assert labels["org.opencontainers.image.title"] == project["name"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]["text"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"] == project["urls"]["Source"]
    assert labels["org.opencontainers.image.revision"] == "${REVISION}" and "REVISION" in args_of(FINAL)
    base = FINAL[0].arguments.split()[0]
    assert labels["org.opencontainers.image.base.name"] == f"docker.io/library/{base}"
    assert (REPO / "LICENSE").read_text().startswith("\n                                 Apache License\n")
    assert "Version 2.0, January 2004" in (REPO / "LICENSE").read_text()


def test_the_changelog_has_an_unreleased_section_and_this_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert headings[0] == "Unreleased"
    assert PYPROJECT["project"]["version"] in headings


def test_hadolint_passes_on_the_dockerfile() -> None:
    """`make lint` runs the same check; here it also says which rule failed."""
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
