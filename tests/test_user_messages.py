"""Every message a user reads goes through the translator whole: a test fails on one built in place
or left as bare English. No frappe: reads the app's source (tests aside) with the extractor's helpers
(crm_automation/translation_sources.py), so what this test demands is what the catalogue test
then finds and asks a zh and a ru entry for.

What counts as a message that reaches a user:
- the text of ``frappe.throw`` / ``frappe.msgprint`` (and their ``title``), and of frappe's
  exceptions (``frappe.ValidationError(...)``, ``frappe.PermissionError(...)``...);
- a rule problem: ``problems.add(path, message)`` (and a pack check's ``check.add``),
  ``RuleProblem(path, message)``, and the text of
  the engine's errors (``RuleError`` and every class built on it: ``TemplateError``,
  ``ExpressionError``, ``ReadRefused``, ``HistoryError``...), which the desk shows when a rule is
  saved, dry-run or replayed;
- the text of any other exception the app raises (``raise BlockedTarget(f"...")``), unless it is a
  programmer's error (TypeError, KeyError...) or its line says ``# not user-facing: <why>``;
- a sentence the engine builds (an f-string or a concatenation with words in it): the engine's
  words end up in the desk's sentences, summaries and reasons, so they are templates for ``_``.

Each must be ``_("... {0}").format(x)`` (in the engine, ``_`` imported from ``crm_automation/engine/i18n.py``,
which the site sets to frappe's translator with ``translating``),
never ``_(f"...")``, ``_("a" + b)``, ``f"..."``, ``"..." % x`` or a bare literal. The offline
command line (``crm-automation``, ``bench ... crm-automation``) speaks English to a terminal and is
left out: ``OFFLINE_MODULES``."""

import ast
import os
import re
import textwrap

from crm_automation import translation_sources as sources

# The terminal-only modules: the CLI, its file readers and the simulator's report (no reader's
# language there). After the reorganisation they live under offline/, which is left out as a whole.
OFFLINE_MODULES = {
	"cli",
	"commands",
	"history_files",
	"input_files",
	"linked_records",
	"record_files",
	"record_reader",
	"simulator",
	"simulator_summary",
}
OFFLINE_DIRS = {"offline"}
# Raised only when code calls code wrongly: for the developer, never shown as an answer to a user.
PROGRAMMER_ERRORS = {
	"AssertionError",
	"AttributeError",
	"ImportError",
	"IndexError",
	"KeyError",
	"LookupError",
	"NotImplementedError",
	"RecursionError",
	"RuntimeError",
	"StopIteration",
	"TypeError",
}
# The engine's errors: their text is a rule problem the desk shows.
RULE_ERROR_ROOTS = {"RuleError", "RuleProblem"}
MESSAGE_FUNCTIONS = {"throw", "msgprint"}
MARKER = "# not user-facing"
# Calls whose text goes to a log or the database, not to a reader.
_NOT_READ = {"log_error", "sql", "sql_list", "multisql", "debug", "info", "warning", "exception", "error"}
_SQL = re.compile(r"^\s*(select|update|insert|delete|alter|create|drop|with)\b", re.IGNORECASE)
_WORDS = re.compile(r"[A-Za-z]{2,}")
_SENTENCE = re.compile(r"[A-Za-z]{2,}[^\S\n]+[A-Za-z{(]")


# ----------------------------------------------------------------------------- the checker


def _translated(node):
	"""``_("...")``, ``_("...").format(...)``: already a template for the translator."""
	if isinstance(node, ast.Call) and sources._is_translate_call(node):
		return True
	return (
		isinstance(node, ast.Call)
		and isinstance(node.func, ast.Attribute)
		and node.func.attr == "format"
		and _translated(node.func.value)
	)


def _text_parts(node):
	"""The English a string expression spells out where it stands (None: not text built here, e.g. a
	variable or a translated template)."""
	if _translated(node):
		return None
	if isinstance(node, ast.Constant):
		return node.value if isinstance(node.value, str) else None
	if isinstance(node, ast.JoinedStr):
		return " ".join(v.value for v in node.values if isinstance(v, ast.Constant))
	if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
		parts = [_text_parts(node.left), _text_parts(node.right)]
		if all(part is None for part in parts):
			return None
		return " ".join(part for part in parts if part)
	if isinstance(node, ast.IfExp):
		parts = [_text_parts(node.body), _text_parts(node.orelse)]
		return None if all(part is None for part in parts) else " ".join(part for part in parts if part)
	if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
		return _text_parts(node.func.value)
	return None


def _is_sentence(node):
	text = _text_parts(node)
	return bool(text and _SENTENCE.search(text))


def _has_words(node):
	text = _text_parts(node)
	return bool(text and _WORDS.search(text))


def _name(func):
	if isinstance(func, ast.Name):
		return func.id
	if isinstance(func, ast.Attribute):
		return func.attr
	return ""


def _owner(func):
	return getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""


def _binds_underscore(node):
	"""A module-level ``def _`` or ``_ = ...`` (a function's own ``_ = translate`` is its business)."""
	if isinstance(node, ast.FunctionDef):
		return node.name == "_"
	return isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_" for t in node.targets)


class _Module:
	def __init__(self, source, where, engine, offline, rule_errors):
		self.tree = ast.parse(source)
		self.lines = source.splitlines()
		self.where = where
		self.engine = engine
		self.offline = offline
		self.rule_errors = rule_errors
		self.problems = []
		self.reported = set()  # a raise's f-string is not also reported as an engine sentence
		self.parents = {}
		for parent in ast.walk(self.tree):
			for child in ast.iter_child_nodes(parent):
				self.parents[child] = parent

	def report(self, node, problem):
		key = (node.lineno, node.col_offset)
		statement = node
		while not isinstance(statement, ast.stmt) and statement in self.parents:
			statement = self.parents[statement]
		# The marker sits on the statement's lines or on the line just above it.
		lines = self.lines[max(statement.lineno - 2, 0) : statement.end_lineno]
		if any(MARKER in line for line in lines) or key in self.reported:
			return
		self.reported.add(key)
		self.problems.append(f"{self.where}:{node.lineno}: {problem}")

	def inside(self, node, test):
		while node in self.parents:
			node = self.parents[node]
			if test(node):
				return True
		return False

	def check(self):
		if self.engine:
			self.check_engine_translator()
		for node in ast.walk(self.tree):
			if isinstance(node, ast.Call):
				self.check_call(node)
			elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
				self.check_raise(node.exc)
			elif isinstance(node, ast.JoinedStr | ast.BinOp) and self.engine:
				self.check_engine_sentence(node)
		return self.problems

	def check_engine_translator(self):
		"""In the engine, ``_`` is the engine's own (crm_automation/engine/i18n.py): the one the site
		hands its translator to. Any other ``_`` there would leave the words in English."""
		calls = [
			n for n in ast.walk(self.tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "_"
		]
		if not calls:
			return
		imported = other = False
		for node in self.tree.body:
			if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == "_" for a in node.names):
				source = "." * node.level + (node.module or "")
				if source in (".i18n", "crm_automation.engine.i18n"):
					imported = True
				else:
					other = True
					self.report(node, f"_ imported from {source}, not from the engine's i18n")
			elif _binds_underscore(node):
				other = True
				self.report(node, "_ redefined in the engine: use the one from crm_automation/engine/i18n.py")
		if not (imported or other):
			self.report(calls[0], "_() used in the engine without importing it from .i18n")

	def check_call(self, node):
		name = _name(node.func)
		if sources._is_translate_call(node):
			if node.args and sources._builds_text(node.args[0]):
				self.report(node, "text built inside _(): use a template with placeholders and .format()")
			return
		if name in MESSAGE_FUNCTIONS and _owner(node.func) in ("frappe", ""):
			arguments = [*node.args[:1], *(k.value for k in node.keywords if k.arg in ("msg", "title"))]
			for argument in arguments:
				items = argument.elts if isinstance(argument, ast.List | ast.Tuple) else [argument]
				for item in items:
					if _has_words(item):
						self.report(item, f"frappe.{name}() with text not passed through _()")
			return
		owner = _owner(node.func).lower()
		if (name == "add" and ("problem" in owner or owner == "check")) or name == "RuleProblem":
			for argument in [*node.args[1:], *(k.value for k in node.keywords if k.arg == "message")]:
				if _has_words(argument):
					self.report(argument, "a rule problem whose message is not a _() template")
			return
		if name in self.rule_errors or (
			_owner(node.func) in ("frappe", "exceptions") and name.endswith(("Error", "Exception"))
		):
			self.check_exception_text(node, name)

	def check_raise(self, call):
		name = _name(call.func)
		if name in PROGRAMMER_ERRORS or name in self.rule_errors or self.offline:
			return  # rule errors: checked wherever they are built, raised or not
		if _owner(call.func) in ("frappe", "exceptions"):
			return  # checked as a call
		self.check_exception_text(call, name)

	def check_exception_text(self, call, name):
		for argument in [*call.args, *(k.value for k in call.keywords if k.arg in ("message", "msg"))]:
			if _is_sentence(argument):
				self.report(argument, f"{name}() raised with English text not passed through _()")

	def check_engine_sentence(self, node):
		parent = self.parents.get(node)
		if isinstance(parent, ast.JoinedStr | ast.BinOp) and _text_parts(parent) is not None:
			return  # judged as part of the whole expression
		if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Add | ast.Mod):
			return
		if not _is_sentence(node) or _SQL.match(_text_parts(node)):
			return
		if self.inside(node, lambda n: isinstance(n, ast.Call) and _name(n.func) in _NOT_READ):
			return
		if self.inside(node, lambda n: isinstance(n, ast.FunctionDef) and n.name in ("__repr__",)):
			return
		if self.inside(
			node,
			lambda n: isinstance(n, ast.Raise) and _name(getattr(n.exc, "func", n.exc)) in PROGRAMMER_ERRORS,
		):
			return
		if self.inside(node, lambda n: isinstance(n, ast.Call) and sources._is_translate_call(n)):
			return  # _(f"...") is reported as such
		self.report(node, "an English sentence built in the engine: make it a _() template")


def _rule_error_classes(trees):
	"""Every class the app builds on RuleError / RuleProblem, by name (they are unique in the app)."""
	bases = {}
	for tree in trees:
		for node in ast.walk(tree):
			if isinstance(node, ast.ClassDef):
				bases[node.name] = {_name(base) for base in node.bases}
	family = set(RULE_ERROR_ROOTS)
	while True:
		more = {name for name, parents in bases.items() if parents & family} - family
		if not more:
			return family
		family |= more


def _is_offline(path):
	parts = sources._relative(path).split(os.sep)
	stem = os.path.splitext(parts[-1])[0]
	return stem in OFFLINE_MODULES or bool(OFFLINE_DIRS & set(parts[:-1]))


def _is_engine(path):
	return "engine" in sources._relative(path).split(os.sep)[:-1]


def check_sources(files, rule_errors=None):
	"""``files``: (path, source text) pairs. Returns the problems found, as ``where: what``."""
	parsed = [(path, source) for path, source in files]
	if rule_errors is None:
		rule_errors = _rule_error_classes(ast.parse(source) for _, source in parsed)
	problems = []
	for path, source in parsed:
		module = _Module(source, sources._relative(path), _is_engine(path), _is_offline(path), rule_errors)
		problems += module.check()
	return problems


def app_sources():
	for path in sources._app_files((".py",)):
		with open(path, encoding="utf-8") as f:
			yield path, f.read()


def test_every_message_a_user_reads_is_a_translated_template():
	problems = sorted(check_sources(app_sources()))
	assert not problems, f"{len(problems)} messages a user reads are not _() templates:\n" + "\n".join(
		problems
	)


# ----------------------------------------------------------------------------- the checker can fail


def _probe(code, name="probe.py", engine=False):
	folder = os.path.join(sources.APP_DIR, "engine") if engine else sources.APP_DIR
	return check_sources([(os.path.join(folder, name), textwrap.dedent(code))])


def test_checker_catches_built_text_in_throw_msgprint_and_translate():
	problems = _probe(
		"""
		import frappe
		from frappe import _
		frappe.throw(f"{name} is not a field that holds a user")
		frappe.throw("Choose a field " + name)
		frappe.throw("Row %s is empty" % idx)
		frappe.throw("Nothing to do")
		frappe.msgprint(msg="Saved {0}".format(name), title="Done")
		frappe.throw(_(f"{name} is not a field"))
		frappe.throw(_("Row {0}: " + name))
		frappe.throw([f"{a} is wrong", _("fine")])
		raise frappe.ValidationError(f"{name} is wrong")
		""",
	)
	assert len(problems) == 10, problems


def test_checker_catches_untranslated_rule_problems_and_engine_errors():
	problems = _probe(
		"""
		from .i18n import _
		problems.add(path, f"{value} is not a field that holds " + ("an email" if e else "a user"), value)
		problems.add(path, "the rule has no actions")
		RuleProblem(path, f"unknown field {name}")
		raise HistoryError("trigger", f"a replay needs a New rule, not {trigger!r}")
		raise TemplateError("the template does not parse")
		raise ValueError(f"no {days} working days within 10 years")
		error = f"{name} did not change as the trigger asks"
		""",
		engine=True,
	)
	assert len(problems) == 7, problems


def test_checker_catches_raised_english_outside_the_engine():
	problems = _probe(
		"""
		raise BlockedTarget(f"{text!r} has no host")
		raise DeliveryError("timed out (overall deadline)")
		raise ActionError("the record is locked by " + user)
		"""
	)
	assert len(problems) == 3, problems


def test_checker_accepts_templates_variables_and_what_no_reader_sees():
	problems = _probe(
		"""
		import frappe
		from .i18n import _
		frappe.throw(_("{0} is not a field that holds a user").format(frappe.bold(name)), title=_("Invalid"))
		frappe.throw(message)
		frappe.throw(str(error))
		problems.add(f"{path}.to_field", _("{0} is not a user id").format(user), value=user)
		problems.add(path, message, field="start")
		RuleProblem(f"actions[{i}]", _("choose at least one recipient"))
		raise HistoryError(f"{where}.doc", _("the document's values are a JSON object"))
		raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
		raise ValueError("duration must not be negative")  # not user-facing: a caller's mistake
		frappe.log_error(title=f"Workflow Rule {name} no longer compiles")
		frappe.db.sql(f"select name from `tab{doctype}` where name = %s", name)
		path = f"branches[{i}].conditions"
		key = f"{doctype}:{name}"
		""",
		engine=True,
	)
	assert problems == []


def test_checker_insists_on_the_engines_translator():
	assert _probe("from .i18n import _\nx = _('a {0}').format(1)\n", engine=True) == []
	assert _probe("from .i18n import _, translating\nx = _('a')\n", engine=True) == []
	assert len(_probe("from gettext import gettext as _\nx = _('a')\n", engine=True)) == 1
	assert len(_probe("def _(text):\n\treturn text\n\n\nx = _('a')\n", engine=True)) == 1
	assert len(_probe("x = _('a')\n", engine=True)) == 1
	# outside the engine frappe's _ is the translator
	assert _probe("from frappe import _\nx = _('a')\n") == []


def test_checker_leaves_the_offline_command_line_out():
	source = 'raise InputError("--now", f"{text!r} is not a date and time")\n'
	assert _probe(source, name="cli.py") == []
	assert check_sources([(os.path.join(sources.APP_DIR, "offline", "readers.py"), source)]) == []
	assert len(_probe(source, name="packs.py")) == 1


def test_rule_error_family_is_found_from_the_source():
	family = _rule_error_classes(ast.parse(source) for _, source in app_sources())
	assert {"RuleError", "TemplateError", "ExpressionError", "ReadRefused", "HistoryError"} <= family
