"""The CycloneDX 1.5 SBOM of one static binary, made from what the build unpacked.

Every component is read from an input file the build actually used: each
.deb's own control data (`dpkg-deb -f`: Package, Version, Architecture,
Source), cross-checked against the resolved lock entry; the setproctitle
sdist's PKG-INFO; the CPython orig tarball the C modules were compiled from;
gcc's libgcc (linked in by the compiler driver, from the host toolchain, named
by `dpkg -S`).  Hashes are the sha256 of those input files (the embedded CA
bundle's own bytes are a property).  Licences are the upstream projects'
SPDX expressions, by Debian source package (LICENCES); a source package
missing from that table fails the build, so nothing is listed unlicensed.

The document is embedded in the binary's archive as shim/_sbom.cdx.json
(`shim version --sbom` prints it with the binary's own sha256 added, which
the binary cannot carry inside itself); scripts/build also writes it beside the
binary as dist/shim-linux-ARCH.cdx.json, with that hash.
"""

import hashlib
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import lock

from shim.util import sbom as runtime  # build.py puts the repo on sys.path

SPEC = "1.5"
EMBEDDED = "_sbom.cdx.json"  # in the shim package (shim.util.sbom reads it)
SHIM_LICENCE = "Apache-2.0"

# Debian source package -> (SPDX licence expression of what is linked in / embedded, component role).
LICENCES = {
    "glibc": ("LGPL-2.1-or-later", "glibc"),
    "linux": ("GPL-2.0-only WITH Linux-syscall-note", "linux-headers"),
    "python3.11": ("PSF-2.0", "cpython"),
    "openssl": ("Apache-2.0", "openssl"),
    "zlib": ("Zlib", "zlib"),
    "ca-certificates": ("MPL-2.0", "ca-bundle"),
    "setproctitle": ("BSD-3-Clause", "setproctitle"),
    "gcc-12": ("GPL-3.0-or-later WITH GCC-exception-3.1", "libgcc"),
    "gcc-12-cross": ("GPL-3.0-or-later WITH GCC-exception-3.1", "libgcc"),
}
# Upstream identities scanners match vulnerabilities by (NVD CPE vendor:product), per role.
CPE = {"glibc": "gnu:glibc", "cpython": "python:python", "openssl": "openssl:openssl", "zlib": "zlib:zlib"}
# What each deb contributes to the binary (a property, for people reading the SBOM).
ROLES = {
    "libc6-dev": "libc.a, libm.a, start files: statically linked",
    "linux-libc-dev": "kernel headers: constants compiled in",
    "libpython3.11-dev": "libpython3.11.a: statically linked",
    "libpython3.11-minimal": "pure-Python standard library: .pyc in the archive",
    "libpython3.11-stdlib": "pure-Python standard library: .pyc in the archive",
    "libssl-dev": "libssl.a, libcrypto.a: statically linked",
    "zlib1g-dev": "libz.a: statically linked",
    "ca-certificates": "Mozilla CA certificates: the embedded bundle shim/net/cacert.pem",
}


def purl_version(version):
    """A version as a purl writes it ('+' percent-encoded; ':' of an epoch and '~' kept)."""
    return quote(version, safe=":~")


def deb_purl(name, version, arch):
    return f"pkg:deb/debian/{name}@{purl_version(version)}?arch={arch}"


def upstream_version(version):
    """2.36-9+deb12u14 -> 2.36; 1:1.2.13.dfsg-1 -> 1.2.13."""
    v = re.sub(r"^\d+:", "", version).rsplit("-", 1)[0]
    return re.sub(r"[.+~](dfsg|ds)\d*$", "", v)


def deb_control(path):
    """Package, Version, Architecture, Source of a .deb, from the file itself."""
    out = subprocess.run(["dpkg-deb", "-f", str(path), "Package", "Version", "Architecture", "Source"],
                         check=True, text=True, stdout=subprocess.PIPE).stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    fields.setdefault("Source", fields["Package"])
    fields["Source"] = fields["Source"].split()[0]  # "Source: glibc (2.36-9)" form
    return fields


def host_package(path):
    """(package, version, source, arch) of the host's dpkg package owning path (the toolchain's libgcc)."""
    owner = subprocess.run(["dpkg", "-S", str(Path(path).resolve())], check=True, text=True,
                           stdout=subprocess.PIPE).stdout.split(":", 1)[0]
    fields = subprocess.run(["dpkg-query", "-W", "-f", "${Version}\n${source:Package}\n${Architecture}\n", owner],
                            check=True, text=True, stdout=subprocess.PIPE).stdout.splitlines()
    return owner, fields[0], fields[1] or owner, fields[2]


def _licence(source, what):
    try:
        return LICENCES[source]
    except KeyError:
        raise RuntimeError(f"write the SBOM: no licence known for {what} (Debian source {source}); "
                           "add it to build/sbom.py LICENCES") from None


def _licences(expression):
    if " " in expression:
        return [{"expression": expression}]
    return [{"license": {"id": expression}}]


# The packages whose code is the upstream project itself (CPE goes on these only, once per project).
CPE_PACKAGES = ("libc6-dev", "libpython3.11-dev", "libssl-dev", "zlib1g-dev")


def _component(kind, name, version, purl, licence, role, sha256, properties=()):
    out = {
        "type": kind,
        "bom-ref": purl,
        "name": name,
        "version": version,
        "purl": purl,
        "licenses": _licences(licence),
        "hashes": [{"alg": "SHA-256", "content": sha256}],
    }
    if role in CPE and name in CPE_PACKAGES:
        out["cpe"] = f"cpe:2.3:a:{CPE[role]}:{upstream_version(version)}:*:*:*:*:*:*:*"
    props = [{"name": "shim:component", "value": role}, *properties]
    out["properties"] = props
    return out


def deb_component(entry, path, arch, extra=()):
    """The component of one used .deb, checked against the file's own control data."""
    control = deb_control(path)
    want_arch = "all" if entry.arch == "all" else arch
    if (control["Package"], control["Version"], control["Architecture"]) != (entry.name, entry.version, want_arch):
        raise RuntimeError(f"write the SBOM: {path} is {control['Package']}:{control['Architecture']}="
                           f"{control['Version']}, not the {entry.label} the build resolved")
    licence, role = _licence(control["Source"], entry.label)
    kind = "data" if role == "ca-bundle" else "library"
    props = [{"name": "shim:embedded-as", "value": ROLES.get(entry.name, "linked in")},
             {"name": "shim:debian-source", "value": control["Source"]}, *extra]
    return _component(kind, entry.name, entry.version, deb_purl(entry.name, entry.version, want_arch),
                      licence, role, entry.sha256, props)


def document(info, arch, inputs, ca_pem, libgcc):
    """The SBOM (a dict) for arch's binary. info: the build info dict; inputs: resolve.Resolution."""
    components = []
    for entry in lock.for_arch(inputs.entries, arch):
        path = inputs.paths[entry.key]
        if entry.kind == "deb":
            extra = ()
            if entry.name == "ca-certificates":
                extra = ({"name": "shim:embedded-sha256", "value": hashlib.sha256(ca_pem).hexdigest()},)
            components.append(deb_component(entry, path, arch, extra))
        elif entry.kind == "src":
            licence, role = _licence(entry.name, entry.label)
            components.append(_component(
                "library", entry.name, entry.version, deb_purl(entry.name, entry.version, "source"), licence, role,
                entry.sha256, [{"name": "shim:embedded-as",
                                "value": f"C modules compiled from {entry.file} (_ssl, _hashlib, _json, …)"}]))
        elif entry.kind == "sdist":
            licence, role = _licence(entry.name, entry.label)
            components.append(_component(
                "library", entry.name, entry.version, f"pkg:pypi/{entry.name}@{purl_version(entry.version)}",
                licence, role, entry.sha256, [{"name": "shim:embedded-as",
                                               "value": f"C module compiled from {entry.file}"}]))
    name, version, source = libgcc["package"], libgcc["version"], libgcc["source"]
    licence, role = _licence(source, name)
    components.append(_component(
        "library", name, version, deb_purl(name, version, libgcc["arch"]), licence, role, libgcc["sha256"],
        [{"name": "shim:embedded-as", "value": "libgcc.a, libgcc_eh.a, crtbeginT.o (host toolchain, not locked)"},
         {"name": "shim:debian-source", "value": source}]))
    shim = {
        "type": "application",
        "bom-ref": f"pkg:generic/shim@{purl_version(info['version'])}?arch={arch}",
        "name": "shim",
        "version": info["version"],
        "purl": f"pkg:generic/shim@{purl_version(info['version'])}?arch={arch}",
        "licenses": _licences(SHIM_LICENCE),
        "properties": [{"name": "shim:commit", "value": info["commit"]},
                       {"name": "shim:build", "value": info.get("build", "locked")},
                       {"name": "shim:freezer", "value": info["freezer"]},
                       {"name": "shim:arch", "value": arch}],
    }
    for label, drift in sorted(info.get("drift", {}).items()):
        shim["properties"].append({"name": "shim:drift", "value": f"{label} locked {drift['locked']} "
                                                                  f"used {drift['used']}"})
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC,
        "version": 1,
        "metadata": {
            "timestamp": info["build_date"],
            "tools": {"components": [{"type": "application", "name": "scripts/build", "version": info["version"]},
                                     {"type": "application", "name": "gcc",
                                      "version": info["deps"].get("cc", "unknown")}]},
            "component": shim,
        },
        "components": components,
        "dependencies": [{"ref": shim["bom-ref"], "dependsOn": [c["bom-ref"] for c in components]},
                         *({"ref": c["bom-ref"], "dependsOn": []} for c in components)],
    }
    # Reproducible: the serial number is derived from the content (same build, same SBOM).
    doc["serialNumber"] = runtime.serial_number(doc)
    return doc


def encode(doc):
    return runtime.encode(doc)


def libgcc_facts(path):
    """The toolchain's libgcc as an SBOM fact: its package, version, source, and the file's sha256."""
    package, version, source, package_arch = host_package(path)
    with open(path, "rb") as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    return {"package": package, "version": version, "source": source, "sha256": sha256, "arch": package_arch}
