"""Values a pseudo event brings to one rule's templates besides the document: the incoming e-mail
of a Communication Received rule as ``communication`` (runtime/replies.py).

They belong to one run of one rule: the templates of that rule's own actions see them, not the rules
its actions start (those run deeper, as other users perhaps), nor anything after the run.
"""

from contextlib import contextmanager

import frappe

from crm_automation.runtime.run_state import run_state

_KEY = "crm_automation_trigger_values"


@contextmanager
def trigger_values(rule_name, **values):
	"""While ``rule_name`` runs (runner.run_rule inside this block), its templates also see ``values``."""
	previous = getattr(frappe.local, _KEY, None)
	# The runner carries out a rule's actions one level deeper than where it was called.
	setattr(frappe.local, _KEY, (rule_name, run_state().depth + 1, values))
	try:
		yield
	finally:
		setattr(frappe.local, _KEY, previous)


def current_trigger_values():
	"""The values of the rule whose actions are being carried out right now, or None."""
	entry = getattr(frappe.local, _KEY, None)
	if not entry:
		return None
	rule_name, depth, values = entry
	state = run_state()
	if state.depth != depth or not state.chain or state.chain[-1] != rule_name:
		return None
	return values
