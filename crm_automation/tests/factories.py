"""Factories for integration tests: make_x(**kw) builds a record with sensible test defaults."""

import json

import frappe
from frappe.utils import add_days, nowdate

from crm_automation.runtime.workflow_rules import clear_rule_cache


def ensure(doctype, name, **fields):
	"""A master record the tests need (Lead Source, Territory...), created once."""
	if not frappe.db.exists(doctype, name):
		doc = frappe.get_doc({"doctype": doctype, **fields})
		doc.insert(ignore_permissions=True, ignore_if_duplicate=True, set_name=name)
	return name


def new_request():
	"""What a new web request or job starts with: nothing fired yet (the once-per-request guard)."""
	from crm_automation.runtime.runner import reset_request_state

	reset_request_state()


def delete_test_rules(pattern="_Test %"):
	names = frappe.get_all("Workflow Rule", filters={"name": ("like", pattern)}, pluck="name")
	for name in names:
		frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
	clear_rule_cache()


def make_user(email, roles=(), enabled=1):
	if not frappe.db.exists("User", email):
		user = frappe.get_doc(
			{
				"doctype": "User",
				"email": email,
				"first_name": email.split("@")[0],
				"send_welcome_email": 0,
				"enabled": enabled,
			}
		)
		user.insert(ignore_permissions=True)
	user = frappe.get_doc("User", email)
	missing = [role for role in roles if role not in {r.role for r in user.roles}]
	if missing:
		user.add_roles(*missing)
	if user.enabled != enabled:
		user.db_set("enabled", enabled)
	return email


def make_rule(name, document_type, trigger, actions, conditions=None, branches=None, **fields):
	if frappe.db.exists("Workflow Rule", name):
		frappe.delete_doc("Workflow Rule", name, force=True, ignore_permissions=True)
	rule = frappe.get_doc(
		{
			"doctype": "Workflow Rule",
			"rule_name": name,
			"document_type": document_type,
			"trigger": trigger,
			"enabled": 1,
			"conditions": json.dumps(conditions) if conditions else None,
			"branches": [
				{**b, "conditions": json.dumps(b["conditions"]) if b.get("conditions") else None}
				for b in branches or []
			],
			"actions": actions,
			**fields,
		}
	)
	rule.insert(ignore_permissions=True)
	clear_rule_cache()
	return rule


def make_lead(**fields):
	values = {"doctype": "Lead", "first_name": "Test", "company_name": "Test Co"}
	values.update(fields)
	return frappe.get_doc(values).insert(ignore_permissions=True)


def make_opportunity(**fields):
	lead = fields.pop("lead", None) or make_lead(first_name="Opportunity Lead").name
	values = {
		"doctype": "Opportunity",
		"opportunity_from": "Lead",
		"party_name": lead,
		"company": default_company(),
		"sales_stage": "Prospecting",
		"items": [{"item_code": make_item(), "qty": 1, "rate": 1000}],
	}
	values.update(fields)
	return frappe.get_doc(values).insert(ignore_permissions=True)


def default_company():
	return frappe.defaults.get_global_default("company") or frappe.get_all("Company", pluck="name", limit=1)[0]


def make_item(code="_Test CRM Automation Item"):
	ensure(
		"Item",
		code,
		item_code=code,
		item_name=code,
		item_group=frappe.get_all("Item Group", filters={"is_group": 0}, pluck="name", limit=1)[0],
		stock_uom="Nos",
		is_stock_item=0,
	)
	return code


def make_customer(name="_Test CRM Automation Customer"):
	ensure(
		"Customer",
		name,
		customer_name=name,
		customer_group=frappe.get_all("Customer Group", filters={"is_group": 0}, pluck="name", limit=1)[0],
		territory=frappe.get_all("Territory", filters={"is_group": 0}, pluck="name", limit=1)[0],
	)
	return name


def make_sales_order(delivery_in_days=10, submit=False, **fields):
	delivery_date = add_days(nowdate(), delivery_in_days)
	values = {
		"doctype": "Sales Order",
		"customer": make_customer(),
		"company": default_company(),
		"transaction_date": min(nowdate(), delivery_date),
		"delivery_date": delivery_date,
		"items": [{"item_code": make_item(), "qty": 1, "rate": 100, "delivery_date": delivery_date}],
	}
	values.update(fields)
	order = frappe.get_doc(values).insert(ignore_permissions=True)
	if submit:
		order.submit()
	return order


def logs_for(doc, rule=None):
	filters = {"reference_doctype": doc.doctype, "reference_name": doc.name}
	if rule:
		filters["rule"] = rule
	return frappe.get_all(
		"Automation Log",
		filters=filters,
		fields=["name", "rule", "outcome", "reason", "branch", "depth"],
		order_by="creation asc",
	)


def open_assignees(doc):
	return frappe.get_all(
		"ToDo",
		filters={"reference_type": doc.doctype, "reference_name": doc.name, "status": "Open"},
		pluck="allocated_to",
	)
