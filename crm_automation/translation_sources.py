"""Every string a user of the app may read, gathered from the app's source without frappe, so a test
can insist each has a zh and a ru entry in ``translations/<lang>.csv`` (the files Frappe v15 loads).

What counts as user-facing: ``_("...")`` in Python (the engine's own ``_`` included, as it is the
site's translator inside :func:`crm_automation.engine.describe.translating`), ``__("...")`` in the
desk's JavaScript, doctype names and their fields' labels, descriptions and Select options, report,
workspace, number card and dashboard chart names and labels, and the starter packs' names and
descriptions. Not counted: fieldnames, code in tests, and Select options that are not words (empty,
operators such as ``>=``).

Strings are keyed the way ``frappe._`` looks them up: HTML tags removed, surrounding space stripped.
"""

import ast
import csv
import json
import os
import re
from collections import namedtuple

APP_DIR = os.path.dirname(os.path.abspath(__file__))
TRANSLATIONS_DIR = os.path.join(APP_DIR, "translations")
LANGUAGES = ("zh", "ru")

Message = namedtuple("Message", "text context where")
Violation = namedtuple("Violation", "where problem")

_TRANSLATE_NAMES = {"_", "_lt"}
_JS_CALL = re.compile(r"(?<![\w$.])__\(\s*")
_HTML_TAG = re.compile(r"<[^>]*>")
_PLACEHOLDER = re.compile(r"\{[0-9]*\}")
_NOT_WORDS = re.compile(r"^[^A-Za-z]*$")


def lookup_key(text):
	"""The key ``frappe._`` uses for a message (frappe.utils.strip_html_tags, then strip)."""
	if "<" in text and ">" in text:
		text = _HTML_TAG.sub("", text)
	return text.strip()


def placeholders(text):
	return sorted(_PLACEHOLDER.findall(text))


# ----------------------------------------------------------------------------- files


def _app_files(suffixes):
	for root, dirs, files in os.walk(APP_DIR):
		dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "tests", "node_modules"))
		for name in sorted(files):
			if name.endswith(suffixes) and not name.startswith("test_"):
				yield os.path.join(root, name)


def _relative(path):
	return os.path.relpath(path, os.path.dirname(APP_DIR))


# ----------------------------------------------------------------------------- Python


def _is_translate_call(node):
	func = node.func
	if isinstance(func, ast.Name):
		return func.id in _TRANSLATE_NAMES
	return isinstance(func, ast.Attribute) and func.attr == "_" and getattr(func.value, "id", "") == "frappe"


def _builds_text(node):
	"""A string assembled in place (f-string, "a" + b, "a".format(b), "a" % b): untranslatable."""
	if isinstance(node, ast.JoinedStr):
		return True
	if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
		return any(
			isinstance(side, ast.Constant | ast.JoinedStr) or _builds_text(side)
			for side in (node.left, node.right)
		)
	if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
		return isinstance(node.func.value, ast.Constant)
	return False


def _is_untranslated_problem(node):
	"""``problems.add(path, "text")``: the engine's rule problems reach the desk when a rule is saved."""
	func = node.func
	if not (
		isinstance(func, ast.Attribute) and func.attr == "add" and getattr(func.value, "id", "") == "problems"
	):
		return False
	message = node.args[1] if len(node.args) > 1 else None
	if isinstance(message, ast.JoinedStr):
		return True
	return isinstance(message, ast.Constant) and isinstance(message.value, str) and " " in message.value


def _python_messages(path, messages, violations):
	with open(path, encoding="utf-8") as f:
		tree = ast.parse(f.read(), path)
	where = _relative(path)
	for node in ast.walk(tree):
		if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
			for side in (node.left, node.right):
				other = node.right if side is node.left else node.left
				if (
					isinstance(side, ast.Call)
					and _is_translate_call(side)
					and not (isinstance(other, ast.Constant) and not str(other.value).strip())
				):
					violations.append(
						Violation(f"{where}:{node.lineno}", "a translated string joined to another with +")
					)
		if isinstance(node, ast.Call) and _is_untranslated_problem(node):
			violations.append(
				Violation(f"{where}:{node.lineno}", "a rule problem shown on the desk is not marked with _()")
			)
		if not (isinstance(node, ast.Call) and _is_translate_call(node) and node.args):
			continue
		first = node.args[0]
		if _builds_text(first):
			violations.append(
				Violation(f"{where}:{node.lineno}", "text built inside _(): use placeholders and .format()")
			)
			continue
		if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
			continue  # a variable: data translated at run time (labels from meta), not a source string
		context = None
		for keyword in node.keywords:
			if keyword.arg == "context" and isinstance(keyword.value, ast.Constant):
				context = keyword.value.value
		if len(node.args) > 2 and isinstance(node.args[2], ast.Constant):
			context = node.args[2].value
		messages.append(Message(first.value, context, f"{where}:{node.lineno}"))


# ----------------------------------------------------------------------------- JavaScript


def _read_js_string(code, start):
	"""The literal starting at code[start] (a quote): (its value, the index after it), or None."""
	quote = code[start]
	if quote not in "'\"`":
		return None
	chars, i = [], start + 1
	while i < len(code):
		char = code[i]
		if char == "\\" and i + 1 < len(code):
			following = code[i + 1]
			chars.append({"n": "\n", "t": "\t"}.get(following, following))
			i += 2
			continue
		if char == quote:
			return "".join(chars), i + 1
		if quote == "`" and char == "$" and code[i + 1 : i + 2] == "{":
			return None  # a template literal with ${...}: built text
		chars.append(char)
		i += 1
	return None


def _js_messages(path, messages, violations):
	with open(path, encoding="utf-8") as f:
		code = f.read()
	where = _relative(path)
	for match in _JS_CALL.finditer(code):
		line = code.count("\n", 0, match.start()) + 1
		literal = _read_js_string(code, match.end())
		if literal is None:
			if code[match.end() : match.end() + 1] in "'\"`":
				violations.append(Violation(f"{where}:{line}", "text built inside __(): use placeholders"))
			continue  # __(variable): data translated at run time
		text, after = literal
		rest = code[after:].lstrip()
		if rest[:1] == "+":
			violations.append(Violation(f"{where}:{line}", "text built inside __(): use placeholders"))
			continue
		context = None
		if rest[:1] == ",":
			# __(text, args, context): the context is the third argument when it is a literal
			third = re.match(r",\s*(?:\[[^\]]*\]|null|undefined)\s*,\s*", rest)
			if third:
				context_literal = _read_js_string(rest, third.end())
				context = context_literal[0] if context_literal else None
		messages.append(Message(text, context, f"{where}:{line}"))


# ----------------------------------------------------------------------------- JSON


def _add(messages, text, where, context=None):
	if isinstance(text, str) and text.strip() and not _NOT_WORDS.match(text):
		messages.append(Message(text, context, where))


def _doctype_messages(path, data, messages):
	"""The desk translates a field's label, description and options with its doctype as context
	(``__(df.label, null, df.parent)``), so an entry ``Branch,...,Workflow Rule Action`` serves
	there without renaming ERPNext's Branch everywhere else."""
	where = _relative(path)
	doctype = data.get("name")
	_add(messages, doctype, where)
	_add(messages, data.get("description"), where)
	for field in data.get("fields") or []:
		field_where = f"{where}:{field.get('fieldname')}"
		_add(messages, field.get("label"), field_where, doctype)
		_add(messages, field.get("description"), field_where, doctype)
		if field.get("fieldtype") == "Select":
			for option in (field.get("options") or "").split("\n"):
				_add(messages, option, field_where, doctype)


def _report_messages(path, data, messages):
	where = _relative(path)
	_add(messages, data.get("report_name") or data.get("name"), where)
	for column in data.get("columns") or []:
		_add(messages, column.get("label"), where)
	for report_filter in data.get("filters") or []:
		_add(messages, report_filter.get("label"), where)


def _workspace_messages(path, data, messages):
	where = _relative(path)
	for key in ("label", "title"):
		_add(messages, data.get(key), where)
	for table in ("links", "shortcuts", "number_cards", "charts", "cards"):
		for row in data.get(table) or []:
			_add(messages, row.get("label"), where)
			_add(messages, row.get("format"), where)
	for block in json.loads(data.get("content") or "[]"):
		if block.get("type") == "header":
			_add(messages, lookup_key(block.get("data", {}).get("text") or ""), where)


def _json_messages(messages):
	for path in _app_files((".json",)):
		parts = _relative(path).split(os.sep)
		if "samples" in parts or "fixtures" in parts:
			continue
		with open(path, encoding="utf-8") as f:
			data = json.load(f)
		if not isinstance(data, dict):
			continue
		doctype = data.get("doctype")
		if doctype == "DocType":
			_doctype_messages(path, data, messages)
		elif doctype == "Report":
			_report_messages(path, data, messages)
		elif doctype == "Workspace":
			_workspace_messages(path, data, messages)
		elif doctype == "Number Card":
			_add(messages, data.get("label"), _relative(path))
		elif doctype == "Dashboard Chart":
			_add(messages, data.get("chart_name"), _relative(path))
		elif doctype == "Dashboard Chart Source":
			_add(messages, data.get("source_name"), _relative(path))


def _pack_messages(messages):
	packs = os.path.join(APP_DIR, "samples", "packs")
	for name in sorted(os.listdir(packs)):
		if name.endswith(".json"):
			path = os.path.join(packs, name)
			with open(path, encoding="utf-8") as f:
				data = json.load(f)
			_add(messages, data.get("name"), _relative(path))
			_add(messages, data.get("description"), _relative(path))


# ----------------------------------------------------------------------------- all together


def collect():
	"""(messages, violations): every user-facing string with where it is, and each string built in
	place instead of through placeholders."""
	messages, violations = [], []
	for path in _app_files((".py",)):
		_python_messages(path, messages, violations)
	for path in _app_files((".js",)):
		_js_messages(path, messages, violations)
	_json_messages(messages)
	_pack_messages(messages)
	return messages, violations


def read_catalogue(lang, directory=TRANSLATIONS_DIR):
	"""{source or "source:context": translation} as frappe.translate.get_translation_dict_from_file
	reads it, plus the rows that are malformed."""
	path = os.path.join(directory, f"{lang}.csv")
	entries, malformed = {}, []
	if not os.path.exists(path):
		return entries, malformed
	with open(path, encoding="utf-8", newline="") as f:
		for number, row in enumerate(csv.reader(f), 1):
			if not row:
				continue
			if len(row) not in (2, 3) or not row[0] or not row[1].strip():
				malformed.append((number, row))
				continue
			source, translation = row[0].replace("\\n", "\n"), row[1].replace("\\n", "\n").strip()
			key = f"{source}:{row[2]}" if len(row) == 3 and row[2] else source
			entries[key] = translation
	return entries, malformed


def catalogue_key(message):
	key = lookup_key(message.text)
	return f"{key}:{message.context}" if message.context else key


def has_entry(entries, message):
	"""Whether frappe._ finds a translation (with a context, a plain entry also serves)."""
	key = lookup_key(message.text)
	return (message.context and f"{key}:{message.context}" in entries) or key in entries
