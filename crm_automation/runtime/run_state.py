"""What one request or background job remembers of the automation it ran: the rules fired per
document (each fires once), the depth and chain of nested automation, and the documents automation
created while one document was saved (Create Document's bound). Kept on frappe.local; reset by
before_request and before_job."""

from contextlib import contextmanager

import frappe
from frappe import _

__all__ = ["DEFAULT_DOCUMENTS_PER_SAVE", "creating_document", "reset_request_state", "run_state"]

# Create Document's bound when CRM Automation Settings names none (a site from before the setting).
DEFAULT_DOCUMENTS_PER_SAVE = 10


class _State:
	__slots__ = ("chain", "created", "creating", "depth", "fired", "root")

	def __init__(self):
		self.depth = 0
		self.chain = []
		self.fired = {}
		# Documents created by automation, by the document whose save started it (root).
		self.created = {}
		self.creating = 0
		self.root = None


def run_state():
	state = getattr(frappe.local, "crm_automation_state", None)
	if state is None:
		state = frappe.local.crm_automation_state = _State()
	return state


def reset_request_state(*args, **kwargs):
	"""Each request and each background job starts with nothing fired (before_request, before_job)."""
	frappe.local.crm_automation_state = _State()


@contextmanager
def creating_document(source):
	"""Create Document's bound: automation creates at most Max Documents Created per Save documents
	while one document is saved, in all (every rule, and the rules those documents start). One Lead
	whose rule creates three Leads, each of which does the same, is 39 Leads three levels down."""
	state = run_state()
	if not state.depth and not state.creating:
		state.root = (source.doctype, source.name)
	root = state.root
	limit = frappe.utils.cint(frappe.get_cached_doc("CRM Automation Settings").get("max_documents_per_save"))
	limit = limit or DEFAULT_DOCUMENTS_PER_SAVE
	count = state.created.get(root, 0)
	if count >= limit:
		raise frappe.ValidationError(
			_(
				"Not created: automation may create at most {0} documents while one document is saved "
				"({1} {2}); see Max Documents Created per Save in CRM Automation Settings"
			).format(limit, _(root[0]), root[1])
		)
	state.created[root] = count + 1
	state.creating += 1
	try:
		yield
	except BaseException:
		state.created[root] -= 1  # not created after all
		raise
	finally:
		state.creating -= 1
