"""The runtime's model on the parent's side: mount, provided packages, environment, interpreter."""

from __future__ import annotations

import importlib.metadata
import os
import zipfile
from pathlib import Path

from builder.runtime.environment import LOCAL_ACCOUNT, FunctionIdentity, lambda_environment
from builder.runtime.interpreter import architecture_note, host_architecture
from builder.runtime.mount import mount_bundles
from builder.runtime.provided import PROVIDED_DISTRIBUTIONS, link_provided


def make_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_layers_are_unpacked_in_order_into_opt_later_ones_winning(tmp_path: Path) -> None:
    bundle = make_zip(tmp_path / "fn.zip", {"app.py": "X = 1\n"})
    first = make_zip(tmp_path / "l1.zip", {"python/shared.py": "V = 'first'\n", "python/only1.py": ""})
    second = make_zip(tmp_path / "l2.zip", {"python/shared.py": "V = 'second'\n"})

    mount = mount_bundles(bundle, [first, second], tmp_path / "root")

    assert (mount.task / "app.py").is_file()
    assert (mount.opt / "python/shared.py").read_text() == "V = 'second'\n"
    assert (mount.opt / "python/only1.py").is_file()


def test_sys_path_follows_lambdas_order(tmp_path: Path) -> None:
    mount = mount_bundles(make_zip(tmp_path / "fn.zip", {"a.py": ""}), [], tmp_path / "root")

    before = mount.path_before_stdlib("3.12")

    assert before == [str(mount.task), str(mount.opt / "python/lib/python3.12/site-packages"), str(mount.opt / "python")]
    assert mount.path_after_stdlib() == [str(mount.runtime)]
    assert mount.shown_as()[str(mount.task)] == "/var/task"


def test_the_runtime_folder_holds_the_sdk_distributions_linked_not_named(tmp_path: Path) -> None:
    modules = link_provided(tmp_path / "runtime")

    assert {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"} <= set(modules)
    boto3_dir = tmp_path / "runtime" / "boto3"
    assert boto3_dir.is_symlink() and (boto3_dir / "__init__.py").is_file()
    # The metadata comes along, so importlib.metadata.version("boto3") answers inside the function too.
    found = {d.metadata["Name"].lower() for d in importlib.metadata.distributions(path=[str(tmp_path / "runtime")])}
    assert found == set(PROVIDED_DISTRIBUTIONS)
    # Only the SDK: nothing else of relay's environment (attrs, click) is there.
    assert not (tmp_path / "runtime" / "attrs").exists() and not (tmp_path / "runtime" / "click").exists()


def test_a_distributions_top_level_entries_come_from_its_record_quoted_paths_too(tmp_path: Path) -> None:
    """What is linked for a provided distribution is read from its RECORD as CSV: a path with a comma is quoted
    there; scripts (../bin), a top-level module's __pycache__ and .data folders are not site-packages entries."""
    from builder.runtime.provided import _top_level_entries

    site = tmp_path / "site"
    info = site / "sdk-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sdk\nVersion: 1.0\n")
    (info / "RECORD").write_text(
        "sdk/__init__.py,sha256=x,1\n\"odd,name/__init__.py\",sha256=y,2\nsdk_single.py,,\n"
        "__pycache__/sdk_single.cpython-312.pyc,,\n../../../bin/sdk,,\nsdk-1.0.data/scripts/x,,\n"
        "sdk-1.0.dist-info/RECORD,,\n")
    [dist] = importlib.metadata.distributions(path=[str(site)])

    assert _top_level_entries(dist) == ["odd,name", "sdk", "sdk-1.0.dist-info", "sdk_single.py"]


def test_the_environment_is_lambdas_and_the_import_check_reaches_no_aws(tmp_path: Path) -> None:
    mount = mount_bundles(make_zip(tmp_path / "fn.zip", {"a.py": ""}), [], tmp_path / "root")
    identity = FunctionIdentity(name="orders", handler="a.handle", runtime="python3.12", memory=256,
                                region="eu-west-1", log_stream="2026/01/01/[$LATEST]abc")
    host = {"PATH": "/usr/bin", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "HOME": "/root",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"}
    configured = {"GREETING": "hi", "AWS_LAMBDA_FUNCTION_NAME": "not-allowed-to-win"}

    invoke = lambda_environment(identity, configured, mount, host, reach_aws=True)
    check = lambda_environment(identity, configured, mount, host, reach_aws=False)

    for env in (invoke, check):
        assert env["GREETING"] == "hi"
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == "orders"
        assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
        assert env["LAMBDA_TASK_ROOT"] == str(mount.task)
        assert "HOME" not in env
    assert invoke["AWS_ACCESS_KEY_ID"] == "AKIA" and invoke["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:1"
    assert "AWS_ACCESS_KEY_ID" not in check and "AWS_ENDPOINT_URL_S3" not in check
    assert check["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull and check["AWS_EC2_METADATA_DISABLED"] == "true"
    assert identity.arn == f"arn:aws:lambda:eu-west-1:{LOCAL_ACCOUNT}:function:orders"


def test_architecture_and_interpreter_notes() -> None:
    assert architecture_note(host_architecture()) == ""
    other = "arm64" if host_architecture() == "x86_64" else "x86_64"
    assert "native extensions" in architecture_note(other)
