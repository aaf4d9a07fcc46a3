"""The streaming side of storywire: CLI, settings, and (later) Faust app, broker, web."""
