"""The document an inbound webhook creates when none is found: Create Document's path and checks
(protected doctypes, the run-as user's create right and permission levels, the per-run bound),
its field map rendered over `payload` instead of a source document."""

import frappe
from frappe import _

from crm_automation.actions.common import render
from crm_automation.runtime.run_state import creating_document
from crm_automation.trust import field_writes, protected_doctypes
from crm_automation.trust import run_as as permissions
from crm_automation.trust.run_as_reads import reading_as


def create_from_payload(doctype, field_map, rule):
	"""Insert a `doctype` from `field_map` (field → template over `payload`, or a constant) as the
	rule's run-as user. Call inside engine.inbound.payload_context. Raises on any refusal."""
	run_as = permissions.run_as_of(rule)
	permissions.check_run_as_user(run_as)
	protected_doctypes.check_not_protected(doctype, run_as, _("Create Document"))
	new = frappe.new_doc(doctype)
	with reading_as(run_as):
		for fieldname, source in field_map.items():
			new.set(fieldname, render(source, None, None) if isinstance(source, str) else source)
	field_writes.check_can_create(new, field_map, run_as)
	# Fields above the levels the run-as user may write go back to their defaults, as that user's
	# own insert would have them (Frappe's validate_higher_perm_levels, skipped by ignore_permissions).
	with permissions.acting_as(run_as):
		new.validate_higher_perm_levels()
	# Unlike Create Document (a draft for a person to complete), this document is the record the
	# rule goes on to act on: it must be complete, so mandatory fields stay mandatory.
	source = frappe._dict(doctype="Workflow Rule", name=rule.name)
	with creating_document(source), permissions.acting_as(run_as):
		new.insert(ignore_permissions=True)
	return new
