"""The CI templates in pipelines/, run step by step against the moto server: drift from the CLI fails here.

Each template's shell steps are extracted in the CI's execution order and run
with bash by ci_harness (read its docstring for exactly what it substitutes:
`pip install` is a no-op with relay first on PATH; GitHub `uses:` steps from
an explicit list are skipped; `${{ }}` expressions, step outputs, dotenv
reports and exported variables are supplied the way the CI would). The
repository is a small offline app in git (a function and a layer of local
code, no third-party requirements) wired to the fixture's accounts: registry
111111111111, staging 222222222222, prod 333333333333 (prod requires staging,
soak 0s). The signing key comes from `relay keygen` and reaches the templates
only as the RELAY_SIGNING_KEY secret. GitLab's jobs get no AWS keys at all:
only their OIDC token and AWS_ROLE_ARN, as in real life.

Every template runs a release twice (0.0.1, then 0.0.2 after a code change)
and then its rollback, and `relay status --env prod --json` must show the
function live at 0.0.1 again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest
from ci_harness import (
    SKIPPED_ACTIONS,
    CiWorld,
    FileVariable,
    HarnessError,
    Outcome,
    codebuild_commands,
    gitlab_jobs,
    harness_env,
    load_yaml,
    programs,
    run_codebuild,
    run_github,
    run_gitlab,
    shell_commands,
)

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
GITHUB = PIPELINES / "github"
GITLAB_CI = PIPELINES / "gitlab" / ".gitlab-ci.yml"
CODEBUILD = PIPELINES / "codebuild"
TEMPLATES = [GITHUB / "relay.yml", GITHUB / "rollback.yml", GITLAB_CI, CODEBUILD / "buildspec-build.yml",
             CODEBUILD / "buildspec-promote.yml", CODEBUILD / "buildspec-rollback.yml"]
# What a template's shell may start: relay, the install, and the few shell built-ins / python one-liner that
# carry relay's JSON output (the published version) to the next stage; git to check the provenance is there;
# mktemp + printf to hand GitLab's OIDC token to boto3 as a file.
ALLOWED_PROGRAMS = {"relay", "pip", "python", "echo", "export", ":", "git", "mktemp", "printf"}
GIT = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com"]
BIN = Path(sys.executable).parent
APP = "greeter"
BUCKET = "greeter-artifacts"

RELAY_TOML = """\
[app]
name = "{app}"
runtime = "python3.12"

[layers.common]
packages = ["libs/common"]

[functions.hello]
source = "functions/hello"
handler = "hello.app.handle"
layers = ["common"]
role = "arn:aws:iam::{{account}}:role/relay-exec"

[registry]
bucket = "{bucket}"
prefix = "relay"
region = "us-east-1"
role = "{registry_role}"

[[registry.trusted_keys]]
keyid = "{keyid}"
public_key = '''
{public_pem}'''

[environments.staging]
account = "222222222222"
region = "us-east-1"
role = "arn:aws:iam::222222222222:role/relay-deployer"

[environments.prod]
account = "333333333333"
region = "us-east-1"
role = "arn:aws:iam::333333333333:role/relay-deployer"
requires = "staging"
soak = "0s"
"""


def handler(greeting: str) -> str:
    return textwrap.dedent(f"""\
        from common import punctuate

        def handle(event, context):
            return punctuate({greeting!r} + " " + event.get("name", "world"))
        """)


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def world(aws, tmp_path: Path) -> CiWorld:
    """The repository a CI checks out (with its public key pinned), the accounts prepared, the CI's secrets."""
    env = {k: v for k, v in os.environ.items() if k != "RELAY_SIGNING_KEY"}
    env["RELAY_CACHE_DIR"] = str(tmp_path / "cache")
    env = harness_env(env, BIN)
    key = json.loads(subprocess.run(["relay", "keygen", "--out", str(tmp_path / "secrets" / "relay.key"), "--json"],
                                    env=env, capture_output=True, text=True, check=True).stdout)
    repo = tmp_path / "repo"
    write(repo, {
        "relay.toml": RELAY_TOML.format(app=APP, bucket=BUCKET, registry_role=aws.role_arn("registry"),
                                        keyid=key["keyid"], public_pem=key["public_key_pem"]),
        "functions/hello/hello/__init__.py": "",
        "functions/hello/hello/app.py": handler("hello"),
        "libs/common/common/__init__.py": "def punctuate(text):\n    return text + '!'\n",
        ".gitignore": "dist/\n.relay/\n.cache/\n*.key\n",
        "docs/index.md": "# greeter\n",
    })
    commit(repo, "greeter", init=True)
    aws.client("registry", "s3").create_bucket(Bucket=BUCKET)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    for account in ("staging", "prod"):
        aws.client(account, "iam").create_role(RoleName="relay-exec", AssumeRolePolicyDocument=json.dumps(trust))
    private_pem = Path(key["private_key"]).read_text(encoding="utf-8")
    (tmp_path / "ci").mkdir()
    return CiWorld(repo=repo, scratch=tmp_path / "ci", env=env,
                   vars={"RELAY_CI_ROLE_ARN": "arn:aws:iam::111111111111:role/ci"},
                   secrets={"RELAY_SIGNING_KEY": private_pem})


def commit(repo: Path, message: str, *, init: bool = False) -> None:
    """Commit everything: the CI checks out commits, and the build records the one it came from."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    for argv in ([["init", "-q", "-b", "main"]] if init else []) + [["add", "-A"], ["commit", "-q", "-m", message]]:
        subprocess.run([*GIT, *argv], cwd=repo, env=env, check=True, capture_output=True)


def change_code(world: CiWorld) -> None:
    write(world.repo, {"functions/hello/hello/app.py": handler("hi")})
    commit(world.repo, "say hi")


def gitlab_oidc_only(world: CiWorld) -> CiWorld:
    """The world a GitLab job sees: no AWS keys, its id_token and the AWS_ROLE_ARN project variable instead."""
    env = {k: v for k, v in world.env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance role of the machine running the tests either
    return attrs.evolve(world, env=env)


GITLAB_OIDC = {"AWS_ROLE_ARN": "arn:aws:iam::111111111111:role/gitlab-ci"}


def assert_ran(outcome: Outcome) -> None:
    assert outcome.ok, outcome.report()
    assert outcome.substituted >= 1, "the template installs relay (with pip) before using it"


def live_in_prod(world: CiWorld) -> dict[str, str]:
    """function -> release version behind the prod alias, from `relay status --env prod --json`."""
    done = subprocess.run(["relay", "status", "--env", "prod", "--json"], cwd=world.checkout("status"), env=dict(world.env),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (prod,) = json.loads(done.stdout)["environments"]
    assert prod["error"] is None
    live = {}
    for fn in prod["functions"]:
        assert fn["exists"] and fn["alias_version"], fn
        assert not fn["drifted"] and fn["code_sha256"] == fn["registry_code_sha256"], fn
        live[fn["function"]] = fn["artifact"]
    return live


# -- what the templates may call ----------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_start_only_relay_and_the_install(template: Path) -> None:
    commands = shell_commands(template)
    used = set().union(*(programs(c) for c in commands))
    assert "relay" in used
    assert used <= ALLOWED_PROGRAMS, f"{template.name} starts {sorted(used - ALLOWED_PROGRAMS)}"
    assert any(c.strip().startswith("pip install") for c in commands), "installs relay the README way"


def test_github_release_assumes_roles_by_oidc_and_gates_prod() -> None:
    doc = load_yaml(GITHUB / "relay.yml")
    assert doc["permissions"]["id-token"] == "write"
    assert doc[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
    jobs = doc["jobs"]
    assert jobs["prod"]["environment"] == "prod" and "staging" in jobs["prod"]["needs"]
    for job in jobs.values():
        (creds,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        assert creds["with"]["role-to-assume"]


def test_gitlab_prod_is_manual_and_rollback_stands_alone() -> None:
    jobs = {job.name: job for job in gitlab_jobs(load_yaml(GITLAB_CI))}
    assert [job.stage for job in jobs.values()] == ["lock", "build", "publish", "staging", "prod", "rollback"]
    assert [rule.get("when") for rule in jobs["prod"].spec["rules"]] == ["manual"]
    assert jobs["rollback"].spec["needs"] == []


def uses_lines(template: Path) -> list[str]:
    return [line.strip() for line in template.read_text(encoding="utf-8").splitlines()
            if line.strip().removeprefix("- ").startswith("uses:")]


@pytest.mark.parametrize("template", [GITHUB / "relay.yml", GITHUB / "rollback.yml"], ids=lambda p: p.name)
def test_github_actions_are_pinned_by_full_commit_with_the_tag_in_a_comment(template: Path) -> None:
    lines = uses_lines(template)
    assert lines
    pinned = re.compile(r"^- uses: (?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})  # v\d+\.\d+\.\d+$")
    bad = [line for line in lines if not pinned.match(line)]
    assert not bad, f"not pinned as owner/action@<40-hex commit>  # vX.Y.Z: {bad}"
    shas: dict[str, set[str]] = {}
    for path in (GITHUB / "relay.yml", GITHUB / "rollback.yml"):
        for line in uses_lines(path):
            match = pinned.match(line)
            if match:
                shas.setdefault(match["action"], set()).add(line.split("@", 1)[1])
    assert all(len(pins) == 1 for pins in shas.values()), f"one pin per action across the workflows: {shas}"


def test_github_caches_the_folder_relay_caches_in() -> None:
    publish = load_yaml(GITHUB / "relay.yml")["jobs"]["publish"]["steps"]
    (cache,) = [s for s in publish if s.get("uses", "").startswith("actions/cache@")]
    (exported,) = [s["run"] for s in publish if "GITHUB_ENV" in s.get("run", "")]
    assert exported.startswith('echo "RELAY_CACHE_DIR=$RUNNER_TEMP/relay-cache"')
    assert cache["with"]["path"] == "${{ runner.temp }}/relay-cache"
    assert "hashFiles(" in cache["with"]["key"] and cache["with"]["restore-keys"]
    names = [s.get("name") or s.get("uses") for s in publish]
    assert names.index(cache["uses"]) < names.index("Build"), "restored before relay builds"


def test_github_checkout_keeps_git_for_provenance_and_drops_the_token() -> None:
    for template in (GITHUB / "relay.yml", GITHUB / "rollback.yml"):
        for job in load_yaml(template)["jobs"].values():
            (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
            assert checkout["with"]["fetch-depth"] >= 1 and checkout["with"]["persist-credentials"] is False


def test_gitlab_assumes_its_role_by_oidc_with_no_stored_keys() -> None:
    text = GITLAB_CI.read_text(encoding="utf-8")
    doc = load_yaml(GITLAB_CI)
    default = doc["default"]
    (token_name,) = default["id_tokens"]
    assert default["id_tokens"][token_name]["aud"] == "sts.amazonaws.com"
    before = default["before_script"]
    assert before[0] == 'export AWS_WEB_IDENTITY_TOKEN_FILE="$(mktemp)"'
    assert before[1] == f"printf '%s' \"${token_name}\" > \"$AWS_WEB_IDENTITY_TOKEN_FILE\""
    assert "AWS_ROLE_ARN" in text and "AWS_ROLE_SESSION_NAME" in doc["variables"]
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_gitlab_caches_relays_cache_folder_and_has_git() -> None:
    doc = load_yaml(GITLAB_CI)
    assert doc["variables"]["RELAY_CACHE_DIR"] == "$CI_PROJECT_DIR/.cache/relay"
    cache = doc["default"]["cache"]
    assert cache["key"] and cache["paths"] == [".cache/relay/"]
    assert "slim" not in doc["default"]["image"], "the -slim images have no git: no provenance, no .gitignore"


def test_codebuild_caches_relays_cache_folder_and_checks_for_git() -> None:
    build = load_yaml(CODEBUILD / "buildspec-build.yml")
    commands = [c for _, c in codebuild_commands(build, "buildspec-build.yml")]
    assert 'export RELAY_CACHE_DIR="$CODEBUILD_SRC_DIR/.cache/relay"' in commands
    assert build["cache"]["paths"] == [".cache/relay/**/*"]
    assert commands.index("git rev-parse --verify HEAD") < commands.index("relay build")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_relay_is_installed_from_the_source_the_team_names(template: Path) -> None:
    """No default that names a package no index has: the install fails at once, saying what to set."""
    installs = {c for c in shell_commands(template) if c.strip().startswith("pip install")}
    assert installs == {'pip install "${RELAY_PIP_SPEC:?set the RELAY_PIP_SPEC variable (see pipelines/README.md in relay)}"'}
    (install,) = installs
    assert "lambda-relay" not in template.read_text(encoding="utf-8")
    done = subprocess.run(["bash", "-c", install.replace("pip install", ":", 1)], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"]})
    assert done.returncode != 0 and "set the RELAY_PIP_SPEC variable" in done.stderr


# -- running them -------------------------------------------------------------------------------------------------


def test_github_workflows_release_twice_then_roll_back(world: CiWorld) -> None:
    first = run_github(GITHUB / "relay.yml", world)
    assert_ran(first)
    assert first.outputs["publish"] == {"version": "0.0.1"}

    change_code(world)
    second = run_github(GITHUB / "relay.yml", world)
    assert_ran(second)
    assert second.outputs["publish"] == {"version": "0.0.2"}

    back = run_github(GITHUB / "rollback.yml", world, inputs={"env": "prod"})
    assert_ran(back)
    assert live_in_prod(world) == {"hello": "0.0.1"}


def test_gitlab_pipeline_releases_twice_then_rolls_back(world: CiWorld) -> None:
    release = [job.name for job in gitlab_jobs(load_yaml(GITLAB_CI)) if job.stage != "rollback"]
    # GitLab cannot mask a multi-line PEM: the key is a File variable; relay reads the file it names.
    project = {"RELAY_SIGNING_KEY": FileVariable(world.secrets["RELAY_SIGNING_KEY"]), **GITLAB_OIDC}
    gitlab = gitlab_oidc_only(world)

    first = run_gitlab(GITLAB_CI, gitlab, release, project_variables=project)
    assert_ran(first)
    assert first.outputs["publish"] == {"VERSION": "0.0.1"}
    # The ledger's caller is the OIDC role's session, named by the template after GitLab's project and job.
    history = subprocess.run(["relay", "history", "--env", "prod", "--json"], cwd=world.checkout("history"),
                             env=dict(world.env), capture_output=True, text=True)
    assert history.returncode == 0, history.stderr
    assert re.search(r"arn:aws:sts::111111111111:assumed-role/gitlab-ci/gitlab-42-\d+", history.stdout), history.stdout

    change_code(world)
    second = run_gitlab(GITLAB_CI, gitlab, release, project_variables=project)
    assert_ran(second)
    assert second.outputs["publish"] == {"VERSION": "0.0.2"}

    back = run_gitlab(GITLAB_CI, gitlab, ["rollback"], project_variables=project,
                      pipeline_variables={"RELAY_ROLLBACK_ENV": "prod", "RELAY_ROLLBACK_TO": "0.0.1"})
    assert_ran(back)
    assert live_in_prod(world) == {"hello": "0.0.1"}


def test_gitlab_jobs_have_no_aws_credentials_without_the_oidc_role(world: CiWorld) -> None:
    """Without AWS_ROLE_ARN the web identity token leads nowhere: no stored keys make the jobs work."""
    project = {"RELAY_SIGNING_KEY": FileVariable(world.secrets["RELAY_SIGNING_KEY"])}
    outcome = run_gitlab(GITLAB_CI, gitlab_oidc_only(world), ["lock", "build", "publish"], project_variables=project)
    assert not outcome.ok
    assert outcome.failed is not None and outcome.failed.command.startswith("relay publish"), outcome.report()


def codebuild_release(world: CiWorld) -> str:
    """The build project, then the promote project for staging and (after the approval) prod, as CodePipeline runs them."""
    built = run_codebuild(CODEBUILD / "buildspec-build.yml", world)
    assert_ran(built)
    version = built.outputs["VERSION"]
    for env in ("staging", "prod"):
        assert_ran(run_codebuild(CODEBUILD / "buildspec-promote.yml", world,
                                 variables={"RELAY_ENV": env, "VERSION": version}))
    return version


def test_codebuild_buildspecs_release_twice_then_roll_back(world: CiWorld) -> None:
    assert codebuild_release(world) == "0.0.1"
    change_code(world)
    assert codebuild_release(world) == "0.0.2"

    assert_ran(run_codebuild(CODEBUILD / "buildspec-rollback.yml", world, variables={"RELAY_ENV": "prod"}))
    assert live_in_prod(world) == {"hello": "0.0.1"}


# -- drift is caught ----------------------------------------------------------------------------------------------


def renamed_flag_copy(template: Path, tmp_path: Path) -> Path:
    """A copy of `template` as if the CLI's `--to` had been renamed `--target` in the template only."""
    text = template.read_text(encoding="utf-8")
    assert "--to " in text
    copy = tmp_path / "drifted" / template.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text.replace("--to ", "--target "), encoding="utf-8")
    return copy


def _run_github_release(copy: Path, world: CiWorld) -> Outcome:
    return run_github(copy, world)


def _run_gitlab_release(copy: Path, world: CiWorld) -> Outcome:
    release = [job.name for job in gitlab_jobs(load_yaml(copy)) if job.stage != "rollback"]
    return run_gitlab(copy, world, release,
                      project_variables={"RELAY_SIGNING_KEY": FileVariable(world.secrets["RELAY_SIGNING_KEY"])})


def _run_codebuild_promote(copy: Path, world: CiWorld) -> Outcome:
    return run_codebuild(copy, world, variables={"RELAY_ENV": "staging", "VERSION": "0.0.1"})


@pytest.mark.parametrize(("template", "run"), [
    (GITHUB / "relay.yml", _run_github_release),
    (GITLAB_CI, _run_gitlab_release),
    (CODEBUILD / "buildspec-promote.yml", _run_codebuild_promote),
], ids=["github", "gitlab", "codebuild"])
def test_a_renamed_cli_flag_fails_the_template(template: Path, run, world: CiWorld, tmp_path: Path) -> None:
    outcome = run(renamed_flag_copy(template, tmp_path), world)
    assert not outcome.ok
    failed = outcome.failed
    assert failed is not None and "--target" in failed.command, outcome.report()
    assert failed.code == 2, "click's usage error"
    assert "No such option" in outcome.log and "--target" in outcome.log
    assert all(c.code is None for c in outcome.commands[outcome.commands.index(failed) + 1:]), "nothing runs after"


def test_an_unknown_action_is_refused_not_skipped(tmp_path: Path) -> None:
    doc = (GITHUB / "relay.yml").read_text(encoding="utf-8")
    copy = tmp_path / "relay.yml"
    copy.write_text(doc.replace("    steps:\n", "    steps:\n      - uses: actions/upload-artifact@v4\n", 1))
    world = CiWorld(repo=tmp_path, scratch=tmp_path / "ci", env={})
    with pytest.raises(HarnessError, match="actions/upload-artifact"):
        run_github(copy, world)
    assert "actions/upload-artifact" not in SKIPPED_ACTIONS
