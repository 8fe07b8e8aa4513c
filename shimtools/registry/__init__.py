"""Image ENTRYPOINT/CMD lookup: OCI layouts, OCI archives, containers-storage and registries."""
