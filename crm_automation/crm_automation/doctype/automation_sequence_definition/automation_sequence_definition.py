# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

from frappe.model.document import Document


class AutomationSequenceDefinition(Document):
	"""One version of a rule's sequence, named by the hash of its content and never changed: steps
	in flight keep running on the version they started with."""
