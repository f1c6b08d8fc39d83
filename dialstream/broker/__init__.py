"""Celery on Redis as dialstream uses it: queues and task names (the contract between ingress and workers), the transport, task messages."""
