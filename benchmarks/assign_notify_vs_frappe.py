"""A Workflow Rule that assigns (round robin), notifies and sets a field, against Frappe's own
Assignment Rule + Notification doing the same work, alternating in one run.

Goal (Workflow Rule issue): no slower than Frappe's. Rolled back at the end.
"""

import json

from _site import connect, summary, timed

BLOCK = 20
BLOCKS = 10
USERS = [f"bench-rr-{i}@example.com" for i in (1, 2, 3)]


def make_users(frappe):
	for email in USERS:
		if not frappe.db.exists("User", email):
			frappe.get_doc({"doctype": "User", "email": email, "first_name": email.split("@")[0], "send_welcome_email": 0, "roles": [{"role": "Sales User"}]}).insert()


def make_ours(frappe):
	frappe.get_doc(
		{
			"doctype": "Workflow Rule",
			"rule_name": "_Bench Assign Notify Set",
			"document_type": "Lead",
			"trigger": "New",
			"enabled": 0,
			"conditions": json.dumps({"all": [{"field": "source", "op": "=", "value": "Campaign"}]}),
			"actions": [
				{"action_type": "Assign", "assign_to_type": "Listed Users", "to_users": "\n".join(USERS)},
				{"action_type": "System Notification", "to_users": "Administrator", "subject": "New lead {{ doc.name }}"},
				{"action_type": "Set Value", "target_field": "status", "value": "Open"},
			],
		}
	).insert()


def make_frappes(frappe):
	frappe.get_doc(
		{
			"doctype": "Assignment Rule",
			"name": "_Bench Frappe Assign",
			"document_type": "Lead",
			"priority": 1,
			"disabled": 1,
			"assign_condition": 'source == "Campaign"',
			"rule": "Round Robin",
			"users": [{"user": u} for u in USERS],
			"assignment_days": [{"day": d} for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")],
		}
	).insert()
	frappe.get_doc(
		{
			"doctype": "Notification",
			"name": "_Bench Frappe Notify",
			"subject": "New lead {{ doc.name }}",
			"document_type": "Lead",
			"event": "New",
			"channel": "System Notification",
			"condition": 'doc.source == "Campaign"',
			"enabled": 0,
			"recipients": [{"receiver_by_role": "System Manager"}],
			"set_property_after_alert": "status",
			"property_value": "Open",
			"message": "New lead",
		}
	).insert()


def use(frappe, ours):
	from crm_automation.runtime.workflow_rules import clear_rule_cache, get_rules

	frappe.db.set_value("Workflow Rule", "_Bench Assign Notify Set", "enabled", int(ours))
	frappe.db.set_value("Assignment Rule", "_Bench Frappe Assign", "disabled", int(ours))
	frappe.db.set_value("Notification", "_Bench Frappe Notify", "enabled", int(not ours))
	clear_rule_cache()
	frappe.cache.delete_value("assignment_rule_map")
	frappe.cache.delete_value("notifications")
	frappe.clear_cache(doctype="Lead")
	get_rules("Lead", "after_insert")


def insert_leads(frappe, tag):
	for i in range(BLOCK):
		frappe.get_doc({"doctype": "Lead", "first_name": f"Bench {tag} {i}", "source": "Campaign", "status": "Lead"}).insert()


def check_work_done(frappe, tag):
	names = frappe.get_all("Lead", filters={"first_name": ("like", f"Bench {tag} %")}, pluck="name")
	assigned = frappe.db.count("ToDo", {"reference_type": "Lead", "reference_name": ("in", names), "status": "Open"})
	opened = frappe.db.count("Lead", {"name": ("in", names), "status": "Open"})
	return len(names), assigned, opened


def main():
	frappe = connect()
	try:
		make_users(frappe)
		if not frappe.db.exists("Lead Source", "Campaign"):
			frappe.get_doc({"doctype": "Lead Source", "source_name": "Campaign"}).insert()
		make_ours(frappe)
		make_frappes(frappe)
		ours, theirs = [], []
		for block in range(BLOCKS):
			order = ((True, ours), (False, theirs)) if block % 2 == 0 else ((False, theirs), (True, ours))
			for is_ours, samples in order:
				use(frappe, is_ours)
				samples.append(timed(insert_leads, frappe, f"{'ours' if is_ours else 'frappe'}-{block}"))
		print(f"Lead inserts per arm: {BLOCK * BLOCKS}, alternating blocks of {BLOCK}")
		print("work done in the last block (leads, assigned, status set):")
		print("  crm_automation:", check_work_done(frappe, f"ours-{BLOCKS - 1}"))
		print("  Frappe        :", check_work_done(frappe, f"frappe-{BLOCKS - 1}"))
		print(summary("crm_automation Workflow Rule        ", ours))
		print(summary("Frappe Assignment Rule + Notification", theirs))
		print(f"ratio ours/Frappe: {sum(ours) / sum(theirs):.3f}x  (goal: at most 1.0x)")
	finally:
		frappe.db.rollback()
		frappe.cache.delete_value("assignment_rule_map")
		frappe.cache.delete_value("notifications")
		from crm_automation.runtime.workflow_rules import clear_rule_cache

		clear_rule_cache()
		frappe.destroy()


if __name__ == "__main__":
	main()
