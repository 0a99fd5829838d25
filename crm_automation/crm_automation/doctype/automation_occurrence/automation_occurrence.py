# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

from frappe.model.document import Document

from crm_automation.runtime.run_log import (
	claim_occurrence,
	occurrence_key,
)


class AutomationOccurrence(Document):
	# begin: auto-generated types
	# This code is auto-generated. Do not modify anything in this block.

	from typing import TYPE_CHECKING

	if TYPE_CHECKING:
		from frappe.types import DF

		occurrence_key: DF.Data
		reference_doctype: DF.Link | None
		reference_name: DF.DynamicLink | None
		rule: DF.DynamicLink | None
		rule_type: DF.Link | None
	# end: auto-generated types

	pass
