"""Image references as Docker normalises them: `nginx` is docker.io/library/nginx:latest.

Only what the lookup needs: the registry host, the repository path, the tag and
the digest, and the rule that a first component with a `.` or `:` (or exactly
`localhost`) is a registry host.

Hand-written on purpose: the grammar is distribution/reference's (these few
regular expressions); the Python packages that parse references (docker-py's
parse_repository_tag) do not normalise to docker.io/library or check the
grammar, and a whole registry library would be a dependency for three fields.
"""

import re
from dataclasses import dataclass

from shim.errors import ShimError

from ..messages import show

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}\Z")
_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z", re.ASCII)
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)  # Go's \w: ASCII letters, digits, _


@dataclass(frozen=True)
class Reference:
    host: str  # as written (docker.io for Docker Hub)
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def api_host(self):
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    @property
    def name(self):
        return f"{self.host}/{self.repository}"

    @property
    def version(self):
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def pinned(self, digest):
        """`host/repo@digest` (the tag dropped: the digest is what runs)."""
        return f"{self.name}@{digest}"

    def __str__(self):
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse(text):
    """Parse an image reference, or raise a one-line usage error naming it."""
    original = text
    if not isinstance(text, str) or not text.strip():
        raise ShimError("parse", "image reference", "empty", "set the container's image")
    text = text.strip()
    if text.startswith("docker://"):
        text = text[len("docker://"):]
    digest = ""
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise ShimError("parse", f"image {original}", f"bad digest {show(digest)}",
                            "write IMAGE@sha256:<64 hex digits>")
    tag = ""
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG.match(tag):
            raise ShimError("parse", f"image {original}", f"bad tag {show(tag)}",
                            "use letters, digits, '.', '_' and '-'")
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, rest
    else:
        host, repository = DOCKER_HUB, text
    if not _HOST.match(host):
        raise ShimError("parse", f"image {original}", f"bad registry host {show(host)}",
                        "write HOST[:PORT]/REPOSITORY[:TAG]")
    if host == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPO.match(repository):
        raise ShimError("parse", f"image {original}", f"bad repository name {show(repository)}",
                        "use lower-case letters, digits and separators")
    if not tag and not digest:
        tag = "latest"
    return Reference(host, repository, tag, digest)
