"""The HTTP API: campaigns, DNC, the bot fleet, webhooks, a live dashboard and /metrics.

A process of its own (``python -m api`` / ``dialstream api``), a thin shell over the campaign
engine (``dialstream.engine``) and the Redis state (``dialstream.state``): it translates HTTP
into calls to them and their answers and errors into JSON (RFC 9457 problem details).

FastAPI on uvicorn: the conventional pair, and what this API needs without home-made code:
request validation with one error shape, the OpenAPI document and interactive docs generated
from the same models, multipart uploads, streaming responses for server-sent events.
"""
