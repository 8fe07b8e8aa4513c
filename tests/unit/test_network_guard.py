"""The suite's loopback-only guard (tests/conftest.py) really refuses other addresses."""

import socket

import pytest


def test_connect_outside_loopback_is_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(PermissionError, match="only loopback"):
            s.connect(("169.254.169.254", 80))  # IMDS: never a target of a test
        s.connect(("127.0.0.1", 9))  # loopback is fine (UDP connect sends nothing)
    finally:
        s.close()
