"""The runtime shell: settings, database, auth, the HTTP API and pages, the CLI and the workers that wire the domains together."""
