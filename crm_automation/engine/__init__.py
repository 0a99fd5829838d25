"""The rule engine: pure Python, no Frappe import (a test enforces it).

Rules are data. The engine compiles them against a document type's field list, evaluates them
against plain dicts (the document and the document before save) and returns intents; it never
writes. The Frappe side (``crm_automation.doc_events``, ``actions``, ``tasks``) is a thin layer around it.
"""

from .conditions import Condition, compile_condition
from .errors import RuleError, RuleProblem
from .fieldtypes import coerce_document_value, parse_rule_value
from .loops import describe_cycle, find_cycles
from .operators import describe_operators
from .workflow import Evaluation, compile_workflow_rule

compile = compile_condition

__all__ = [
	"Condition",
	"Evaluation",
	"RuleError",
	"RuleProblem",
	"coerce_document_value",
	"compile",
	"compile_condition",
	"compile_workflow_rule",
	"describe_cycle",
	"describe_operators",
	"find_cycles",
	"parse_rule_value",
]
