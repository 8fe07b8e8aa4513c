"""`shim version --sbom`: the CycloneDX 1.5 document describing this shim.

A static binary carries the SBOM scripts/build made from the inputs it
unpacked (shim/_sbom.cdx.json, build/sbom.py); only the binary's own sha256
cannot be inside it, so it is added here from /proc/self/exe (and by
scripts/build / the tools image for the copies they write, via with_binary).
A source install (or another freezer) has no embedded SBOM: it gets a small
document naming shim, the Python running it and the optional modules found.
Stdlib only.
"""

import hashlib
import json

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

EMBEDDED = "_sbom.cdx.json"
SPEC = "1.5"


def embedded() -> "dict[str, Any] | None":
    """The SBOM baked into the binary, or None (source installs)."""
    from shim.util.resources import get_data

    data = get_data("shim", EMBEDDED)
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def with_binary(doc: "dict[str, Any]", sha256: str) -> "dict[str, Any]":
    """doc with the binary's own sha256 on its metadata component (a new dict)."""
    doc = json.loads(json.dumps(doc))
    doc["metadata"]["component"]["hashes"] = [{"alg": "SHA-256", "content": sha256}]
    return doc


def encode(doc: "dict[str, Any]") -> bytes:
    """The document as the files beside the binaries hold it (indented, keys sorted, one newline)."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def from_binary(data: bytes) -> "bytes | None":
    """The SBOM file of a static binary's bytes: its embedded document plus its sha256 (None: none embedded)."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            doc = json.loads(zf.read(f"shim/{EMBEDDED}"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return None
    return encode(with_binary(doc, hashlib.sha256(data).hexdigest()))


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def serial_number(doc: "dict[str, Any]") -> str:
    """A urn:uuid derived from the content (same document, same serial number).

    Formatted by hand: the uuid module would pull the _uuid C module into the binary."""
    raw = bytearray(hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4 layout
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def for_source(version: str, python_version: str, implementation: str,
               modules: "dict[str, str | None]") -> "dict[str, Any]":
    """A document for shim run from source: shim, the interpreter, the optional modules found.

    modules: {name: version or None} (None: not importable, left out).
    """
    runtime = {"type": "platform", "bom-ref": f"pkg:generic/{implementation}@{python_version}",
               "name": implementation, "version": python_version,
               "purl": f"pkg:generic/{implementation}@{python_version}",
               "properties": [{"name": "shim:embedded-as", "value": "the interpreter running shim (not embedded)"}]}
    if implementation == "cpython":
        runtime["licenses"] = [{"license": {"id": "PSF-2.0"}}]
    components = [runtime]
    for name, found in sorted(modules.items()):
        if found:
            purl = f"pkg:pypi/{name}@{found}"
            components.append({"type": "library", "bom-ref": purl, "name": name, "version": found, "purl": purl})
    shim = {"type": "application", "bom-ref": f"pkg:generic/shim@{version}", "name": "shim", "version": version,
            "purl": f"pkg:generic/shim@{version}", "licenses": [{"license": {"id": "Apache-2.0"}}],
            "properties": [{"name": "shim:build", "value": "source"}]}
    doc = {
        "bomFormat": "CycloneDX", "specVersion": SPEC, "version": 1,
        "metadata": {"component": shim},
        "components": components,
        "dependencies": [{"ref": shim["bom-ref"], "dependsOn": [c["bom-ref"] for c in components]},
                         *({"ref": c["bom-ref"], "dependsOn": []} for c in components)],
    }
    doc["serialNumber"] = serial_number(doc)
    return doc
