"""The WISEflow client against the simulator (examsync.adapters.wiseflow)."""
