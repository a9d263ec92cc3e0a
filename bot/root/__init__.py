"""The composition root: settings, the one place that builds and wires every part, and the CLI."""
