"""Templates of rules (subjects, messages, values) rendered in a read-only Jinja sandbox.

A rule's author is not trusted with the site: a template sees plain values (the document as a
dict, the values before the save, a few pure helpers) and nothing that writes, commits, sends or
enqueues. Jinja's immutable sandbox also refuses calls that would change those values
(`doc.update(...)`, `list.append`) and access to private attributes (`__class__`, `_x`).

One environment per process: building it is the expensive part, rendering a cached template is
cheap, which is what the simulator needs for a million records.

Each render has a budget (engine/budget.py, engine/template_sandbox.py): time, steps, characters
written and the size of every value, enforced while it runs.
"""

import datetime
import functools
import re
from collections.abc import Mapping

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError

from crm_automation.engine import budget
from crm_automation.engine.errors import RuleError, RuleProblem
from crm_automation.engine.i18n import _
from crm_automation.engine.payload import current_payload
from crm_automation.engine.reads import READ_HELPER, read_helper
from crm_automation.engine.template_sandbox import MeteredSandbox
from crm_automation.engine.time_limit import time_limit

MAX_TEMPLATE_LENGTH = 20_000
MAX_OUTPUT_LENGTH = 100_000
MAX_VALUE_LENGTH = budget.MAX_VALUE_LENGTH
MAX_REGEX_LENGTH = 500
# A pattern such as (a+)+$ takes exponential time on some texts: one match may not hold a save up.
REGEX_TIME_LIMIT_MS = 50
REGEX_TIME_LIMIT = REGEX_TIME_LIMIT_MS / 1000


class TemplateError(RuleError):
	"""A template that does not parse, or that tried something the sandbox forbids."""

	def __init__(self, message, path="template"):
		super().__init__(RuleProblem(path, message))


def is_template(text):
	return isinstance(text, str) and ("{{" in text or "{%" in text)


def _regex_match(pattern, text):
	pattern, text = str(pattern), "" if text is None else str(text)
	if len(pattern) > MAX_REGEX_LENGTH:
		raise RuleError(
			RuleProblem(
				"regex_match", _("the pattern is longer than {0} characters").format(MAX_REGEX_LENGTH)
			)
		)
	with time_limit(REGEX_TIME_LIMIT, _("regex_match took longer than {0} ms").format(REGEX_TIME_LIMIT_MS)):
		return re.fullmatch(pattern, text) is not None


# Pure helpers a template may call; nothing here reaches a database, a network or a file.
SAFE_GLOBALS = {
	"len": len,
	"min": min,
	"max": max,
	"abs": abs,
	"round": round,
	"int": int,
	"float": float,
	"str": str,
	"regex_match": _regex_match,
	"today": lambda: datetime.date.today().isoformat(),
}


class ReadOnlyDoc:
	"""A document as a template sees it: fields read, nothing written.

	`doc.first_name` and `doc["first_name"]` both work, and a field wins over any method name
	(`doc.items` is a Sales Order's items, not a dict method); a missing field is None, as on a
	Frappe document, so `{{ doc.x or 'default' }}` behaves the same offline and on a site.
	`doc.get("x")` works too unless the doctype has a field named "get".
	"""

	__slots__ = ("_values",)

	def __init__(self, values):
		object.__setattr__(self, "_values", dict(values or {}))

	def __getitem__(self, key):
		return _read_only(self._values.get(key))

	def __getattr__(self, key):
		if key.startswith("_"):
			raise AttributeError(key)
		if key == "get" and "get" not in self._values:
			return self._get
		return _read_only(self._values.get(key))

	def _get(self, key, default=None):
		return _read_only(self._values.get(key, default))

	def __setattr__(self, key, value):
		raise TypeError("read-only")

	def __contains__(self, key):
		return key in self._values

	def __iter__(self):
		return iter(self._values)

	def __len__(self):
		return len(self._values)

	def __bool__(self):
		return True

	def __repr__(self):
		return f"ReadOnlyDoc({self._values.get('name')!r})"


def read_only_value(value):
	"""A plain value as rules see it: mappings read-only, lists as tuples."""
	return _read_only(value)


def _read_only(value):
	if isinstance(value, Mapping) and not isinstance(value, ReadOnlyDoc):
		return ReadOnlyDoc(value)
	if isinstance(value, list | tuple):
		return tuple(_read_only(v) for v in value)
	return value


@functools.cache
def sandbox_environment():

	env = MeteredSandbox(autoescape=False, keep_trailing_newline=False)
	env.globals.clear()
	env.globals.update(SAFE_GLOBALS)
	return env


@functools.lru_cache(maxsize=2048)
def compile_template(text):
	"""Parse once; a template that does not parse raises TemplateError with Jinja's reason."""
	if len(text) > MAX_TEMPLATE_LENGTH:
		raise TemplateError(_("template is longer than {0} characters").format(MAX_TEMPLATE_LENGTH))
	try:
		return sandbox_environment().from_string(text)
	except TemplateSyntaxError as error:
		raise TemplateError(_("template does not parse: {0} (line {1})").format(error.message, error.lineno))


def render_template(text, doc=None, old_doc=None, extra=None, read=None):
	"""Render a rule's template with read-only `doc` and `old_doc` (dicts or mappings); `read` is
	what `get_value(...)` reads with (engine/reads.py), None where records cannot be read.

	Text without `{{`/`{%` is returned as it is. Anything the sandbox refuses raises TemplateError.
	"""
	if not text:
		return ""
	if not is_template(text):
		return text
	template = compile_template(text)
	context = {"doc": as_read_only(doc), "old_doc": as_read_only(old_doc) if old_doc is not None else None}
	context["payload"] = _read_only(current_payload())
	for key, value in (extra or {}).items():
		context[key] = _read_only(value)
	context[READ_HELPER] = read_helper(budget.unmetered(read))
	with budget.evaluating(budget.TEMPLATE, TemplateError):
		try:
			output = template.render(context)
		except TemplateError:
			raise
		except RuleError as error:  # a read refused, a regex_match over its time
			raise TemplateError(error.first.message)
		except SecurityError as error:
			raise TemplateError(_("template tried something rules may not do: {0}").format(error))
		except UndefinedError as error:
			raise TemplateError(_("template uses an unknown name: {0}").format(error))
		except RecursionError:
			raise TemplateError(_("template calls itself too deeply (a macro calling itself?)")) from None
		except budget.Overrun:
			raise
		except Exception as error:  # None * 2 on a record without the value, and the like
			raise TemplateError(
				_("failed on this document: {0}: {1}").format(error.__class__.__name__, error)
			) from None
	if len(output) > MAX_OUTPUT_LENGTH:
		raise TemplateError(_("template output is longer than {0} characters").format(MAX_OUTPUT_LENGTH))
	return output


def as_read_only(doc):
	if doc is None:
		return ReadOnlyDoc({})
	if isinstance(doc, ReadOnlyDoc):
		return doc
	if isinstance(doc, Mapping):
		return ReadOnlyDoc(doc)
	as_dict = getattr(doc, "as_dict", None)
	return ReadOnlyDoc(as_dict() if as_dict else vars(doc))
