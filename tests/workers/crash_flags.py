"""The Redis flags of ``tests.workers.crashing_app``'s two faults, importable without its patch
(importing the app patches ``workers.leg_events`` in the importing process: a test process
that imported it died in the next test to end a call in-process)."""

__all__ = ["CRASH_FLAG", "END_CRASH_FLAG"]

CRASH_FLAG = "test:crashed-once"
END_CRASH_FLAG = "test:crashed-ending-once"
