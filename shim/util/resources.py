"""Package data files (shim/_buildinfo.json, the CA bundle) from any install.

pkgutil.get_data covers a source tree and the static binary's archive, but not
a package the binary froze into its launcher (its start-up modules, see
docs/freeze.md): FrozenImporter has no get_data.  Such a package's __path__
points into the archive, so zipimport reads the file from there.
"""


def get_data(package: str, resource: str) -> "bytes | None":
    """The bytes of `resource` in `package`, or None when there is no such file."""
    import pkgutil

    try:
        data = pkgutil.get_data(package, resource)
    except (OSError, ImportError, ValueError):
        return None
    if data is not None:
        return data
    import importlib
    import zipimport

    for entry in getattr(importlib.import_module(package), "__path__", ()):
        try:
            return zipimport.zipimporter(entry).get_data(f"{entry}/{resource}")
        except (zipimport.ZipImportError, OSError):
            continue
    return None
