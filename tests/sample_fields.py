"""Field lists shaped like ERPNext's, for engine tests that need no site."""

LEAD_FIELDS = {
	"lead_name": {"fieldtype": "Data", "label": "Full Name"},
	"status": {"fieldtype": "Select", "options": "Lead\nOpen\nReplied\nOpportunity\nInterested\nConverted"},
	"source": {"fieldtype": "Link", "options": "Lead Source"},
	"territory": {"fieldtype": "Link", "options": "Territory"},
	"industry": {"fieldtype": "Link", "options": "Industry Type"},
	"annual_revenue": {"fieldtype": "Currency", "label": "Annual Revenue"},
	"no_of_employees": {"fieldtype": "Int"},
	"probability": {"fieldtype": "Percent"},
	"unsubscribed": {"fieldtype": "Check"},
	"email_id": {"fieldtype": "Data", "options": "Email"},
	"mobile_no": {"fieldtype": "Data", "options": "Phone"},
	"lead_owner": {"fieldtype": "Link", "options": "User"},
	"contact_date": {"fieldtype": "Datetime"},
	"expected_close": {"fieldtype": "Date"},
	"call_time": {"fieldtype": "Time"},
	"notes": {"fieldtype": "Table", "options": "CRM Note"},
}
