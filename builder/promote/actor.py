"""Who ran a promotion or a rollback: the caller before any role was assumed, and the CI run, if any.

Every environment is changed through an assumed role, so the role session's
ARN (`assumed-role/relay-deployer/relay-shop-prod`) is the same for everyone.
The ledger therefore also records `Who`: the ARN of the base credentials
(asked of STS once per run, before the role is assumed) and, in CI, the run's
metadata read from the variables the CI system sets.

`ci_run(environ)` is pure: it reads the mapping it is given (the command layer
passes `os.environ`) and only the variables named in `_GITHUB`, `_GITLAB` and
`_CODEBUILD` below; nothing that could hold a secret (tokens, keys) is read.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

GITHUB_ACTIONS = "github-actions"
GITLAB_CI = "gitlab-ci"
CODEBUILD = "codebuild"
SYSTEMS = (GITHUB_ACTIONS, GITLAB_CI, CODEBUILD)
SYSTEM_NAMES = {GITHUB_ACTIONS: "GitHub Actions", GITLAB_CI: "GitLab CI", CODEBUILD: "CodeBuild"}

# Longer values are cut: a ledger record is no place for an essay, and a variable that long is not metadata.
_MAX_VALUE = 512


def _text(value: str | None) -> str | None:
    return value[:_MAX_VALUE] if value else None


@attrs.frozen
class CiRun:
    """The CI run a promotion happened in, as the CI system describes it (every field may be absent)."""

    system: str = attrs.field(validator=attrs.validators.in_(SYSTEMS))  # github-actions | gitlab-ci | codebuild
    actor: str | None = attrs.field(default=None, converter=_text)  # who triggered the run (a login, an initiator)
    run_url: str | None = attrs.field(default=None, converter=_text)  # the run (pipeline, build) as a web page
    job_url: str | None = attrs.field(default=None, converter=_text)  # GitLab: the job within the pipeline
    run_id: str | None = attrs.field(default=None, converter=_text)  # GitHub: run id[/attempt]; CodeBuild: build ARN or id
    commit: str | None = attrs.field(default=None, converter=_text)  # the commit the run built
    ref: str | None = attrs.field(default=None, converter=_text)  # GitHub: the branch or tag ref
    workflow: str | None = attrs.field(default=None, converter=_text)  # GitHub: the workflow's name
    project: str | None = attrs.field(default=None, converter=_text)  # owner/repo, group/project

    @property
    def name(self) -> str:
        """`GitHub Actions`, `GitLab CI`, `CodeBuild`."""
        return SYSTEM_NAMES[self.system]

    def to_json(self) -> dict:
        """Only the fields that are set: a record keeps no empty keys."""
        return {key: value for key, value in attrs.asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, doc: Mapping) -> CiRun:
        return cls(doc["system"], **{f.name: doc[f.name] for f in attrs.fields(cls) if f.name != "system" and f.name in doc})


@attrs.frozen
class Who:
    """Who started a run: the base credentials' ARN (before any role was assumed) and the CI run, if any."""

    base_arn: str | None = None  # None: unknown (STS was not asked)
    ci: CiRun | None = None

    def to_json(self) -> dict:
        doc: dict = {"base_arn": self.base_arn}
        if self.ci is not None:
            doc["ci"] = self.ci.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: Mapping) -> Who:
        ci = doc.get("ci")
        return cls(base_arn=doc.get("base_arn"), ci=CiRun.from_json(ci) if ci is not None else None)


class Actor(str):
    """The ARN a run acts as (the environment's role session), carrying `who` started the run.

    A `str`, so every `actor: str` the promoter and the rollback take keeps
    working; the ledger records `.who` next to the ARN in each record it writes.
    """

    who: Who | None

    def __new__(cls, arn: str, who: Who | None = None) -> Actor:
        actor = super().__new__(cls, arn)
        actor.who = who
        return actor

    def __reduce__(self):  # copies and pickles keep `who`
        return (Actor, (str(self), self.who))


def started_by(who: Who) -> str | None:
    """`octocat in GitHub Actions https://...`, or the base credentials' ARN; None when nothing is known."""
    if who.ci is not None:
        run = who.ci.run_url or who.ci.run_id
        return f"{who.ci.actor or 'someone'} in {who.ci.name}" + (f" {run}" if run else "")
    return f"started from {who.base_arn}" if who.base_arn else None


def who_of(actor: str) -> Who | None:
    """The `Who` an actor carries (None for a plain ARN: tests, and callers that know no more)."""
    return actor.who if isinstance(actor, Actor) else None


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() == "true"


def ci_run(environ: Mapping[str, str]) -> CiRun | None:
    """The CI run described by `environ` (GitHub Actions, GitLab CI, CodeBuild), or None outside CI."""
    if _flag(environ, "GITHUB_ACTIONS"):
        return _github(environ)
    if _flag(environ, "GITLAB_CI"):
        return _gitlab(environ)
    if environ.get("CODEBUILD_BUILD_ID") or environ.get("CODEBUILD_BUILD_ARN"):
        return _codebuild(environ)
    return None


def _github(env: Mapping[str, str]) -> CiRun:
    server, repo, run = env.get("GITHUB_SERVER_URL", "").rstrip("/"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    attempt = env.get("GITHUB_RUN_ATTEMPT")
    url = None
    if server and repo and run:
        url = f"{server}/{repo}/actions/runs/{run}" + (f"/attempts/{attempt}" if attempt else "")
    run_id = f"{run}/{attempt}" if run and attempt else run
    return CiRun(GITHUB_ACTIONS, actor=env.get("GITHUB_ACTOR"), run_url=_web(url), run_id=run_id,
                 commit=env.get("GITHUB_SHA"), ref=env.get("GITHUB_REF"), workflow=env.get("GITHUB_WORKFLOW"),
                 project=repo)


def _gitlab(env: Mapping[str, str]) -> CiRun:
    return CiRun(GITLAB_CI, actor=env.get("GITLAB_USER_LOGIN"), run_url=_web(env.get("CI_PIPELINE_URL")),
                 job_url=_web(env.get("CI_JOB_URL")), commit=env.get("CI_COMMIT_SHA"),
                 project=env.get("CI_PROJECT_PATH"))


def _codebuild(env: Mapping[str, str]) -> CiRun:
    return CiRun(CODEBUILD, actor=env.get("CODEBUILD_INITIATOR"), run_url=_web(env.get("CODEBUILD_BUILD_URL")),
                 run_id=env.get("CODEBUILD_BUILD_ARN") or env.get("CODEBUILD_BUILD_ID"),
                 commit=env.get("CODEBUILD_RESOLVED_SOURCE_VERSION"))


def _web(url: str | None) -> str | None:
    """A URL a person can open; anything else (no scheme, credentials in it) is not recorded."""
    if not url or not url.startswith(("https://", "http://")):
        return None
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    return None if "@" in netloc else url
