"""dialstream's state in Redis: one module per concept, its Lua scripts beside it, every key named in ``keys``."""
