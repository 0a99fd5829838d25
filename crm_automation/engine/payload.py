"""The `payload` of an inbound webhook, as the conditions and templates of one run see it: set around
the run (runtime/inbound_webhooks.py, offline/inbound_webhooks.py), None everywhere else."""

from contextlib import contextmanager
from contextvars import ContextVar

_current_payload = ContextVar("crm_automation_payload", default=None)


@contextmanager
def payload_context(payload):
	"""Conditions and templates evaluated inside see `payload` (plain data, read-only there)."""
	token = _current_payload.set(payload)
	try:
		yield
	finally:
		_current_payload.reset(token)


def current_payload():
	return _current_payload.get()
