"""The application: CLI, demo, ``up``, the local stack, the process supervisor, the embedded Redis. The only layer that may import every package."""
