"""Network plumbing for the sources and sinks: HTTP client, proxies, TLS trust."""
