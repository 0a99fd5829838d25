"""What the Rule Outcome report measures on each document of a rule's groups, read as the asker may.

An outcome is yes/no (a rate, compared with statistics.compare_proportions) or a number (a mean,
statistics.compare_means). Defaults per document type, then any Check, Select or number field:

- Lead, Converted: an Opportunity from the Lead (opportunity_from = Lead, party_name), a Customer
  with its lead_name, or the Lead's status Converted.
- Lead, Reached Status (with a value): its status is that value now.
- Opportunity, Won: status Converted (ERPNext v15: Open, Quotation, Converted, Lost, Replied, Closed).
- Sales Order, Order Value: base_grand_total (company currency: orders in other currencies compare),
  submitted orders only.
- Issue, First Response Time / Resolution Time: first_response_time / resolution_time (seconds,
  shown in hours; lower is better), issues that have one.

Only documents the asker may read count (frappe.get_list: roles, User Permissions, sharing), and
only fields at the asker's permission levels; linked Opportunities and Customers likewise.
"""

import frappe
from frappe import _
from frappe.utils import escape_html

from crm_automation.trust.field_access import hidden_fields

CONVERTED = "Converted"
REACHED_STATUS = "Reached Status"
WON = "Won"
ORDER_VALUE = "Order Value"
FIRST_RESPONSE = "First Response Time"
RESOLUTION = "Resolution Time"
FIELD = "Field"
OUTCOMES = (CONVERTED, REACHED_STATUS, WON, ORDER_VALUE, FIRST_RESPONSE, RESOLUTION, FIELD)

DEFAULTS = {
	"Lead": (CONVERTED, REACHED_STATUS),
	"Opportunity": (WON,),
	"Sales Order": (ORDER_VALUE,),
	"Issue": (FIRST_RESPONSE, RESOLUTION),
}
NUMBER_TYPES = ("Int", "Float", "Currency", "Percent", "Duration")
CHUNK = 5000


class Measure:
	"""``kind`` "proportion" or "mean"; ``values`` {document name: True/False or a number}."""

	def __init__(self, kind, label, values, higher_is_better=True, unit="", scale=1):
		self.kind = kind
		self.label = label
		self.values = values
		self.higher_is_better = higher_is_better
		self.unit = unit
		self.scale = scale


def outcomes_for(doctype):
	"""The outcomes offered for a document type: its defaults, then any field."""
	return [*DEFAULTS.get(doctype, ()), FIELD]


def measure(doctype, names, outcome, field=None, value=None, lower_is_better=False):
	"""The Measure of ``outcome`` over the documents ``names`` the asker may read."""
	if outcome not in outcomes_for(doctype):
		frappe.throw(
			_("Outcome {0} does not apply to {1}; choose one of: {2}").format(
				frappe.bold(escape_html(outcome)),
				frappe.bold(_(doctype)),
				", ".join(_(o) for o in outcomes_for(doctype)),
			)
		)
	if outcome == CONVERTED:
		return _converted(names)
	if outcome == REACHED_STATUS:
		if not value:
			frappe.throw(_("Reached Status needs the status in Value"))
		return _equals(doctype, names, "status", value, _("Status {0}").format(value))
	if outcome == WON:
		return _equals(doctype, names, "status", "Converted", _("Won"))
	if outcome == ORDER_VALUE:
		values = _read(doctype, names, "base_grand_total", {"docstatus": 1})
		return Measure("mean", _("Order value"), _numbers(values))
	if outcome in (FIRST_RESPONSE, RESOLUTION):
		fieldname = "first_response_time" if outcome == FIRST_RESPONSE else "resolution_time"
		values = {k: v for k, v in _numbers(_read(doctype, names, fieldname)).items() if v > 0}
		return Measure("mean", _(outcome), values, higher_is_better=False, unit=" h", scale=1 / 3600)
	return _any_field(doctype, names, field, value, lower_is_better)


def _any_field(doctype, names, fieldname, value, lower_is_better):
	df = frappe.get_meta(doctype).get_field(fieldname) if fieldname else None
	if not df or df.fieldtype not in ("Check", "Select", "Data", *NUMBER_TYPES):
		frappe.throw(
			_("{0} is not a Check, Select or number field of {1}").format(
				frappe.bold(escape_html(fieldname or "")), frappe.bold(_(doctype))
			)
		)
	label = _(df.label or fieldname)
	if df.fieldtype == "Check":
		values = _read(doctype, names, fieldname)
		return Measure("proportion", label, {k: bool(v) for k, v in values.items()})
	if df.fieldtype in NUMBER_TYPES:
		return Measure("mean", label, _numbers(_read(doctype, names, fieldname)), not lower_is_better)
	if not value:
		frappe.throw(
			_("Choose the value of {0} that counts as a success (Value)").format(
				frappe.bold(escape_html(label))
			)
		)
	return _equals(doctype, names, fieldname, value, f"{label} {value}")


def _equals(doctype, names, fieldname, value, label):
	values = _read(doctype, names, fieldname)
	return Measure("proportion", label, {k: v == value for k, v in values.items()})


def _converted(names):
	status = _read("Lead", names, "status")
	converted = {name for name, value in status.items() if value == "Converted"}
	readable = set(status)
	for chunk in _chunks(sorted(readable)):
		if _may_read_field("Opportunity", "party_name"):
			converted.update(
				frappe.get_list(
					"Opportunity",
					filters={"opportunity_from": "Lead", "party_name": ("in", chunk)},
					pluck="party_name",
					limit_page_length=0,
				)
			)
		if _may_read_field("Customer", "lead_name"):
			converted.update(
				frappe.get_list(
					"Customer", filters={"lead_name": ("in", chunk)}, pluck="lead_name", limit_page_length=0
				)
			)
	return Measure("proportion", _("Converted"), {name: name in converted for name in readable})


def _read(doctype, names, fieldname, filters=None):
	"""{name: value} of the documents of ``names`` the asker may read (others are left out)."""
	if not _may_read_field(doctype, fieldname):
		frappe.throw(
			_("You may not read {0} of {1}").format(
				frappe.bold(escape_html(fieldname)), frappe.bold(_(doctype))
			)
		)
	found = {}
	for chunk in _chunks(names):
		rows = frappe.get_list(
			doctype,
			filters={"name": ("in", chunk), **(filters or {})},
			fields=["name", fieldname],
			limit_page_length=0,
			as_list=True,
			order_by=None,
		)
		found.update(rows)
	return found


def _may_read_field(doctype, fieldname):
	if not frappe.has_permission(doctype, "read"):
		return False
	return fieldname not in hidden_fields(doctype, frappe.session.user).own


def _numbers(values):
	return {k: float(v) for k, v in values.items() if v is not None}


def _chunks(names):
	names = list(names)
	for start in range(0, len(names), CHUNK):
		yield names[start : start + CHUNK]
