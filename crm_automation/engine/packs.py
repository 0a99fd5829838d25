"""Rule packs: a versioned JSON file of Workflow Rules, Lead Score Rules and Escalation Policies,
checked completely (every problem with its location) before anything is imported or simulated.

    {"format": "crm_automation.pack", "version": 1, "name": "...", "description": "...",
     "workflow_rules": [...], "lead_score_rules": [...], "escalation_policies": [...]}

Each rule is the plain dict the engine compiles, plus its name (rule_name / policy_name) and
settings such as enabled, description and priority.
"""

from .errors import RuleError, RuleProblem
from .escalation import compile_policy
from .scoring import compile_score_rule
from .workflow import compile_workflow_rule

PACK_FORMAT = "crm_automation.pack"
PACK_VERSION = 1
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
		check.add("pack", "a pack is a JSON object")
		return check
	if data.get("format") != PACK_FORMAT:
		check.add("format", f'not a crm_automation pack (format must be "{PACK_FORMAT}")')
		return check
	if data.get("version") != PACK_VERSION:
		check.add("version", f"unknown pack version {data.get('version')!r} (this app reads version {PACK_VERSION})")
		return check
	unknown = set(data) - set(SECTIONS) - {"format", "version", "name", "description", "exported_from", "exported_on"}
	for key in sorted(unknown):
		check.add(key, "unknown section")
	for section, (_doctype, name_key) in SECTIONS.items():
		items = data.get(section) or []
		if not isinstance(items, list):
			check.add(section, "must be a list")
			continue
		seen = set()
		for i, item in enumerate(items):
			_check_item(check, section, i, item, name_key, seen, meta_for, known_activity_types)
	return check


def _check_item(check, section, i, item, name_key, seen, meta_for, known_activity_types):
	where = f"{section}[{i}]"
	if not isinstance(item, dict):
		check.add(where, "must be an object")
		return
	name = item.get(name_key) or item.get("name")
	if not name:
		check.add(where, f"has no {name_key}")
		return
	where = f"{section}[{i}] ({name})"
	if name in seen:
		check.add(where, "the name is used twice in this pack")
	seen.add(name)
	doctype = item.get("document_type") or ("Lead" if section == "lead_score_rules" else None)
	fields = meta_for(doctype) if doctype else None
	if fields is None:
		check.add(f"{where}.document_type", f"{doctype!r} is not a document type here")
		return
	rule = {**item, "name": name, "document_type": doctype}
	try:
		if section == "workflow_rules":
			compiled = compile_workflow_rule(rule, fields, meta_for)
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
	check.compiled[section].append((rule, compiled))
