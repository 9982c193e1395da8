"""What Lambda tells a function about itself: its environment variables and its context's fields.

A function's process sees its configured variables plus Lambda's reserved ones
(which win), and nothing of the host but PATH and LD_LIBRARY_PATH (extended
by the mount's folders). `relay invoke` also passes the caller's AWS
credentials and endpoints, so a handler that calls AWS reaches what the
caller's shell would; the build's import check passes none and points the
SDK at no credentials at all, so importing a handler never calls AWS.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Mapping

import attrs

from builder.runtime.mount import Mount

LATEST = "$LATEST"
DEFAULT_REGION = "us-east-1"
# moto's default account: ARNs look real and match `relay local`'s AWS.
LOCAL_ACCOUNT = "123456789012"
# What a handler may need from the caller's shell to reach AWS (or relay local's moto).
PASSTHROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")
# The AWS SDK finds no credentials anywhere (no files, no instance metadata): it fails at once instead.
NO_AWS_CREDENTIALS = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@attrs.frozen
class FunctionIdentity:
    """A function as Lambda describes it to itself: name, version, handler, runtime, memory, region, logs."""

    name: str
    handler: str
    runtime: str  # "python3.12"
    memory: int  # MB
    region: str
    log_stream: str
    version: str = LATEST

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{LOCAL_ACCOUNT}:function:{self.name}"

    def context_fields(self, request_id: str) -> dict[str, str]:
        """The Lambda context's attributes for one request (the bootstrap builds the context from them)."""
        return {
            "request_id": request_id,
            "function_name": self.name,
            "function_version": self.version,
            "invoked_function_arn": self.arn,
            "memory_limit_in_mb": str(self.memory),
            "log_group_name": self.log_group,
            "log_stream_name": self.log_stream,
        }


def function_identity(name: str, *, handler: str, runtime: str, memory: int, host_env: Mapping[str, str]) -> FunctionIdentity:
    """A new identity for one run: the caller's region, a fresh log stream of today."""
    today = datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d")
    return FunctionIdentity(name=name, handler=handler, runtime=runtime, memory=memory, region=local_region(host_env),
                            log_stream=f"{today}/[{LATEST}]{uuid.uuid4().hex}")


def local_region(host_env: Mapping[str, str]) -> str:
    return host_env.get("AWS_REGION") or host_env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def checked_variables(function: str, configured: Mapping[str, str]) -> Mapping[str, str]:
    """The function's variables, refused (ConfigError) when Lambda would refuse them: a bad name, a NUL in a value.

    relay.toml's are checked when it is read; this holds for every other source (a release's recorded settings).
    The value is never shown: it may be a secret.
    """
    from builder.config import ENV_VAR_NAME
    from builder.errors import ConfigError

    for name, value in configured.items():
        if not isinstance(name, str) or not ENV_VAR_NAME.fullmatch(name):
            raise ConfigError(f"{function}: environment variable {name!a} is not a valid name",
                              hint="Lambda accepts a letter followed by letters, digits and underscores.")
        if not isinstance(value, str) or "\0" in value:
            raise ConfigError(f"{function}: environment variable {name} holds a NUL character or is not text "
                              "(value not shown)", hint="Environment variable values are text without NUL characters.")
    return configured


def lambda_environment(
    identity: FunctionIdentity, configured: Mapping[str, str], mount: Mount, host_env: Mapping[str, str],
    *, reach_aws: bool,
) -> dict[str, str]:
    """The process's whole environment: host basics < the function's own variables < Lambda's reserved ones.

    `reach_aws`: pass the caller's AWS credentials and endpoints (`relay
    invoke`), or make sure the SDK finds none (the import check).
    """
    env = {}
    if reach_aws:
        env.update({key: value for key, value in host_env.items()
                    if key in PASSTHROUGH or key.startswith("AWS_ENDPOINT_URL_")})
    env.update({
        "PATH": os.pathsep.join(filter(None, [host_env.get("PATH", "/usr/local/bin:/usr/bin:/bin"), str(mount.opt / "bin")])),
        "LANG": "en_US.UTF-8",
        "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [
            host_env.get("LD_LIBRARY_PATH", ""), str(mount.task), str(mount.task / "lib"), str(mount.opt / "lib"),
        ])),
    })
    env.update(checked_variables(identity.name, configured))
    env.update({
        "_HANDLER": identity.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{identity.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": identity.name,
        "AWS_LAMBDA_FUNCTION_VERSION": identity.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(identity.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": identity.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": identity.log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": identity.region,
        "AWS_DEFAULT_REGION": identity.region,
        "LAMBDA_TASK_ROOT": str(mount.task),
        "LAMBDA_RUNTIME_DIR": str(mount.runtime),
        "TZ": ":UTC",
    })
    if not reach_aws:
        env.update(NO_AWS_CREDENTIALS)
    return env
