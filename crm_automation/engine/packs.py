"""Rule packs: a versioned JSON file of Workflow Rules, Lead Score Rules and Escalation Policies,
checked completely (every problem with its location) before anything is imported or simulated.

    {"format": "crm_automation.pack", "version": 1, "name": "...", "description": "...",
     "workflow_rules": [...], "lead_score_rules": [...], "escalation_policies": [...]}

Each rule is the plain dict the engine compiles, plus its name (rule_name / policy_name) and
settings such as enabled, description and priority.

Secrets never travel in a pack: a webhook's ``secret`` and ``headers`` are exported as
SECRET_PLACEHOLDER, and whoever imports the pack fills them in (``secret_placeholders`` lists them
with the key to fill each by). Nor does the user a rule runs as: a pack's ``run_as`` (or ``owner``)
is not exported and is ignored on import, where the importer becomes the run-as user (packs.py).
"""

from .errors import RuleError, RuleProblem
from .escalation import compile_policy
from .i18n import _
from .pack_shapes import shape_problems
from .schedules import compile_pack_schedule
from .scoring import compile_score_rule
from .workflow import TRIGGER_SCHEDULE, compile_workflow_rule

PACK_FORMAT = "crm_automation.pack"
PACK_VERSION = 1
# No angle brackets: Frappe's HTML sanitizer would rewrite it on save.
SECRET_PLACEHOLDER = "(to be filled in)"
SECRET_FIELDS = ("secret", "headers")
SECTIONS = {
	"workflow_rules": ("Workflow Rule", "rule_name"),
	"lead_score_rules": ("Lead Score Rule", "rule_name"),
	"escalation_policies": ("Escalation Policy", "policy_name"),
}


class PackCheck:
	"""The compiled rules of a pack, by section, and every problem found."""

	def __init__(self):
		self.problems = []
		self.compiled = {section: [] for section in SECTIONS}

	@property
	def ok(self):
		return not self.problems

	def add(self, path, message):
		self.problems.append(RuleProblem(path, message))


def check_pack(data, meta_for, known_activity_types=None):
	"""Check a loaded pack. ``meta_for(doctype)`` returns a doctype's fields, or None if the site (or
	the shipped field lists) has no such doctype."""
	check = PackCheck()
	if not isinstance(data, dict):
		check.add("pack", _("a pack is a JSON object"))
		return check
	if data.get("format") != PACK_FORMAT:
		check.add("format", _('not a crm_automation pack (format must be "{0}")').format(PACK_FORMAT))
		return check
	if data.get("version") != PACK_VERSION:
		check.add(
			"version",
			_("unknown pack version {0} (this app reads version {1})").format(
				repr(data.get("version")), PACK_VERSION
			),
		)
		return check
	unknown = (
		set(data)
		- set(SECTIONS)
		- {"format", "version", "name", "description", "exported_from", "exported_on"}
	)
	for key in sorted(unknown):
		check.add(key, _("unknown section"))
	pack_policies = (
		data.get("escalation_policies") if isinstance(data.get("escalation_policies"), list) else []
	)
	for section, (_doctype, name_key) in SECTIONS.items():
		items = data.get(section) or []
		if not isinstance(items, list):
			check.add(section, _("must be a list"))
			continue
		seen = set()
		for i, item in enumerate(items):
			_check_item(
				check, section, i, item, name_key, seen, meta_for, known_activity_types, pack_policies
			)
	return check


def _check_item(check, section, i, item, name_key, seen, meta_for, known_activity_types, pack_policies=()):
	where = f"{section}[{i}]"
	if not isinstance(item, dict):
		check.add(where, _("must be an object"))
		return
	name = item.get(name_key) or item.get("name")
	if not name:
		check.add(where, _("has no {0}").format(name_key))
		return
	if not isinstance(name, str):
		check.add(f"{where}.{name_key}", _("must be text"))
		return
	where = f"{section}[{i}] ({name})"
	if name in seen:
		check.add(where, _("the name is used twice in this pack"))
	seen.add(name)
	doctype = item.get("document_type") or ("Lead" if section == "lead_score_rules" else None)
	fields = meta_for(doctype) if isinstance(doctype, str) and doctype else None
	if fields is None:
		check.add(f"{where}.document_type", _("{0} is not a document type here").format(repr(doctype)))
		return
	shape = shape_problems(item, where)
	for path, message in shape:
		check.add(path, message)
	if shape:
		return
	rule = {**item, "name": name, "document_type": doctype}
	if section == "workflow_rules" and isinstance(item.get("actions"), list):
		rule["actions"] = [_without_placeholders(action) for action in item["actions"]]
	if section == "workflow_rules" and item.get("steps"):
		rule["calendars"] = pack_calendars(pack_policies)
	try:
		if section == "workflow_rules":
			compiled = compile_workflow_rule(rule, fields, meta_for)
			if compiled.trigger == TRIGGER_SCHEDULE:
				compiled.schedule = compile_pack_schedule(rule, pack_calendars(pack_policies))
		elif section == "lead_score_rules":
			if known_activity_types is not None:
				rule["known_activity_types"] = known_activity_types
			compiled = compile_score_rule(rule, fields)
		else:
			compiled = compile_policy(rule, fields, rule.get("holidays") or [])
	except RuleError as error:
		for problem in error.problems:
			check.add(f"{where}.{problem.path}" if problem.path else where, problem.message)
		return
	except (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError) as error:
		# A shape the checks above do not foresee: refused with the rule named, never a traceback.
		check.add(where, _("cannot be read ({0}: {1})").format(error.__class__.__name__, error))
		return
	check.compiled[section].append((rule, compiled))


def pack_calendars(policies):
	"""The calendars a sequence's business-time waits can name: those of the pack's Escalation
	Policies (working hours and the holidays the pack carries)."""
	calendars = {}
	for policy in policies or ():
		if not isinstance(policy, dict) or not isinstance(policy.get("working_hours") or [], list):
			continue
		name = policy.get("policy_name") or policy.get("name")
		if not isinstance(name, str):
			continue  # reported by the policy's own check
		if (policy.get("calendar_mode") or "24x7") == "24x7":
			calendars[name] = {"mode": "24x7"}
			continue
		calendars[name] = {
			"mode": "Working Hours",
			"hours": [
				{"weekday": row.get("weekday"), "start": row.get("start_time"), "end": row.get("end_time")}
				for row in policy.get("working_hours") or []
				if isinstance(row, dict)
			],
			"holidays": policy.get("holidays") or [],
		}
	return calendars


def _without_placeholders(action):
	if not isinstance(action, dict):
		return action
	return {k: v for k, v in action.items() if not (k in SECRET_FIELDS and v == SECRET_PLACEHOLDER)}


def placeholder_key(rule_name, row, fieldname):
	"""How an importer names one secret to fill in: ``<rule name>:<action row>:<field>``."""
	return f"{rule_name}:{row}:{fieldname}"


def secret_placeholders(data):
	"""Every secret a pack leaves to be filled in, in pack order: dicts with key, path, rule, row
	(1-based, as the desk numbers action rows) and field."""
	found = []
	if not isinstance(data, dict) or not isinstance(data.get("workflow_rules"), list):
		return found
	for i, item in enumerate(data["workflow_rules"]):
		if not isinstance(item, dict) or not isinstance(item.get("actions"), list):
			continue
		name = item.get("rule_name") or item.get("name")
		for j, action in enumerate(item["actions"]):
			if not isinstance(action, dict):
				continue
			for fieldname in SECRET_FIELDS:
				if action.get(fieldname) == SECRET_PLACEHOLDER:
					found.append(
						{
							"key": placeholder_key(name, j + 1, fieldname),
							"path": f"workflow_rules[{i}] ({name}).actions[{j}].{fieldname}",
							"rule": name,
							"index": i,
							"row": j + 1,
							"field": fieldname,
						}
					)
	return found
