"""The `firefly` command line: typer commands, one module per group. Thin: they call the
station's API (or start the daemon / the simulator) and print text or --json."""
