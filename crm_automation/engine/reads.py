"""`get_value(doctype, name, fieldname)`: the one read a condition or a template may make.

The engine does not know where records live. Whoever renders or evaluates passes a `read(doctype,
name, fieldname)` function: on a site it reads as the rule's run-as user (crm_automation/
rule_reads.py), in the offline simulator it reads the linked records file. This module checks the
arguments, answers an empty name without reading, and caps and caches the reads of one evaluation:
a template looping over a thousand child rows must not become a thousand queries per save.

`name` is a record name or a dict of field = value filters (the first record matching them). A
record that does not exist and one the run-as user may not read both read as None, so a rule cannot
learn which records exist. A read the rule may never make (a protected doctype, an unknown field)
raises ReadRefused, which fails the run with its reason.
"""

from collections.abc import Mapping

from crm_automation.engine.errors import RuleError, RuleProblem
from crm_automation.engine.i18n import _

READ_HELPER = "get_value"
MAX_READS = 50
_FILTER_VALUE_TYPES = (str, int, float, bool, type(None))


class ReadRefused(RuleError):
	"""A read a rule may not make, with the reason its author should see."""

	def __init__(self, message, path=READ_HELPER):
		super().__init__(RuleProblem(path, message))


def read_helper(read=None):
	"""The `get_value` one evaluation or rendering calls; `read` None means reads are not available
	where this rule is being looked at."""
	cache = {}

	def get_value(doctype, name, fieldname="name"):
		_check_text(doctype, "doctype")
		_check_text(fieldname, "fieldname")
		if name is None or name == "":
			return None
		key = (doctype, _name_key(name), fieldname)
		if key in cache:
			return cache[key]
		if len(cache) >= MAX_READS:
			raise ReadRefused(
				_("{0} may read at most {1} values per evaluation").format(READ_HELPER, MAX_READS)
			)
		if read is None:
			raise ReadRefused(_("{0} cannot read records here").format(READ_HELPER))
		filters = dict(key[1]) if isinstance(key[1], tuple) else key[1]
		value = cache[key] = read(doctype, filters, fieldname)
		return value

	return get_value


def _check_text(value, what):
	if not isinstance(value, str) or not value.strip():
		raise ReadRefused(
			_("{0}: the {1} must be a text, not {2}").format(READ_HELPER, what, repr(value)[:80])
		)


def _name_key(name):
	"""A hashable name: text as it is, a dict of filters as sorted (field, value) pairs."""
	if isinstance(name, str):
		return name
	if isinstance(name, int | float) and not isinstance(name, bool):
		return str(name)
	if isinstance(name, Mapping):
		pairs = []
		for field, value in name.items():
			_check_text(field, "filter field")
			if not isinstance(value, _FILTER_VALUE_TYPES):
				raise ReadRefused(
					_("{0}: filter {1} must be a plain value, not {2}").format(
						READ_HELPER, field, type(value).__name__
					)
				)
			pairs.append((field, value))
		if not pairs:
			raise ReadRefused(_("{0}: filters must name at least one field").format(READ_HELPER))
		return tuple(sorted(pairs))
	raise ReadRefused(
		_("{0}: the name must be a text or a dict of filters, not {1}").format(
			READ_HELPER, type(name).__name__
		)
	)


def constant_reads(calls):
	"""(doctype, fieldname, filter fields) of the reads whose doctype is written out, from `calls`:
	the arguments of each call as written (a constant's value, a dict literal's keys, None for
	anything else). Lets the rule form check reads when the rule is saved; the rest are checked as
	they run."""
	found = []
	for arguments in calls:
		doctype, name, fieldname = (*arguments[:3], *(None, None, "name")[len(arguments) :])
		if not isinstance(doctype, str):
			continue
		filter_fields = tuple(name) if isinstance(name, Mapping) else ()
		found.append((doctype, fieldname if isinstance(fieldname, str) else None, filter_fields))
	return found
