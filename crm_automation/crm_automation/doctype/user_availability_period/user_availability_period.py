# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

from frappe.model.document import Document


class UserAvailabilityPeriod(Document):
	pass
