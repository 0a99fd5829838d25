"""The engine's translator: ``_()`` marks a whole template for the extractor
(crm_automation/translation_sources.py) and returns it in the reader's language when the site has
set one with :func:`translating`; offline (the simulator, the CLI) it returns the English template.
The engine imports no frappe, so the site passes ``frappe._`` in."""

import contextlib
import contextvars
import inspect

_translator = contextvars.ContextVar("crm_automation_engine_translator", default=None)


def _(message, context=None):
	"""``context`` for the templates Frappe also uses in another sense ("{0} and {1}" joins a list
	there); a translator without a ``context`` parameter gets the plain message."""
	translator = _translator.get()
	if not translator:
		return message
	translate, takes_context = translator
	return translate(message, context=context) if context and takes_context else translate(message)


def _lt(message, context=None):
	"""Marks a template for the extractor and returns it untranslated: for words fixed when a module
	is imported (operator labels), which the reader's side translates as it shows them
	(``__(label, null, context)`` in the desk)."""
	return message


@contextlib.contextmanager
def translating(translate):
	"""Speak the reader's language: ``with translating(frappe._): describe_rule(...)``."""
	try:
		takes_context = "context" in inspect.signature(translate).parameters
	except (TypeError, ValueError):
		takes_context = False
	token = _translator.set((translate, takes_context))
	try:
		yield
	finally:
		_translator.reset(token)
