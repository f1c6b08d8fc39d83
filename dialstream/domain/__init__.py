"""Pure decisions, no I/O: the leg state machine, dialing, calling windows, retry and redial policy, contacts and phone numbers, reports."""
