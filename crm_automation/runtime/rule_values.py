"""The values each rule of one save is evaluated on: the document as the rule's run-as user may read
it (trust/field_access.py), with the linked values that user may read, built once per user and only
for rules that read a field hidden from their user or a linked value."""

from collections import ChainMap

from crm_automation.runtime.linked_values import linked_paths_of, linked_values_as, readable_view_of
from crm_automation.trust.field_access import Hidden, fields_above_level_zero, hidden_fields
from crm_automation.trust.run_as import run_as_of


class RunAsValues:
	"""The values each rule of one save is evaluated on: the document as the rule's run-as user may
	read it, with the linked values that user may read (fetched once per user for all the rules
	given). A rule that reads no field hidden from its user evaluates on the document's own dict,
	as before: nothing is built for a rule that reads no hidden field and no linked value."""

	__slots__ = ("by_user", "doctype", "own", "own_before", "rules")

	def __init__(self, doctype, own, own_before, rules):
		self.doctype = doctype
		self.own = own
		self.own_before = own_before
		self.rules = rules
		self.by_user = {}

	def of(self, rule):
		user = run_as_of(rule)
		entry = self.by_user.get(user)
		if entry is None:
			entry = self.by_user[user] = self._for_user(user)
		plain, shown, hidden = entry
		return shown if hidden and _reads_hidden(rule, hidden) else plain

	def _for_user(self, user):
		own, before = self.own, self.own_before
		hidden = hidden_fields(self.doctype, user)
		shown = (readable_view_of(own, hidden), readable_view_of(before, hidden)) if hidden else (own, before)
		paths = linked_paths_of([rule for rule in self.rules if run_as_of(rule) == user])
		if not paths:
			return (own, before), shown, hidden
		# Linked values follow the links the user may read: through the view of the document.
		found = linked_values_as(shown[0], paths, user)
		plain = (ChainMap(found, own), None if before is None else ChainMap(found, before))
		if hidden:
			shown = (ChainMap(found, shown[0]), None if before is None else ChainMap(found, shown[1]))
		else:
			shown = plain
		return plain, shown, hidden


def _reads_hidden(rule, hidden):
	"""Whether a rule's conditions read a field in ``hidden`` (worked out once per compiled rule)."""
	reads = getattr(rule, "_crm_automation_reads", None)
	if reads is None:
		reads = _condition_reads(rule)
		try:
			rule._crm_automation_reads = reads
		except AttributeError:
			pass
	if reads is True:
		return True
	fields, tables = reads
	return not fields.isdisjoint(hidden.own) or not tables.isdisjoint(hidden.tables)


def _condition_reads(rule):
	"""(own fields, child tables) the conditions of a compiled rule read; True when not known."""
	try:
		conditions = [rule.trigger_condition, rule.condition, *(b.condition for b in rule.branches)]
	except AttributeError:
		return True
	fields, tables = set(), set()
	for condition in conditions:
		if condition is None:
			continue
		fields |= condition.fields
		tables |= condition.tables
		fields.update(linked.own_field for linked in condition.linked_paths.values())
	return frozenset(fields), frozenset(tables)


def masked_values(doctype, own, own_before):
	"""The document without any field above level 0, or None when the doctype has none. The index
	also looks rules up on it, so a rule whose indexed field its user may not read is found as
	that field's absence would find it, not by the value its user may not see."""
	high = fields_above_level_zero(doctype)
	if not high:
		return None
	hidden = Hidden(high)
	return readable_view_of(own, hidden), readable_view_of(own_before, hidden)


def candidates_of(rules, own, own_before, masked, after=None):
	found = rules.candidates(own, own_before, after=after)
	if masked is None:
		return found
	more = rules.candidates(*masked, after=after)
	position = rules.index.position
	return sorted({id(rule): rule for rule in (*found, *more)}.values(), key=lambda r: position[id(r)])
