"""Every user-facing string has a zh and a ru entry, keeps its placeholders, and is passed to _() / __()
whole (placeholders, never text glued together). No frappe: reads the source and the CSV catalogues."""

import ast
import csv
import re
import textwrap

import pytest

from crm_automation import translation_sources as sources

MESSAGES, VIOLATIONS = sources.collect()
CATALOGUES = {lang: sources.read_catalogue(lang) for lang in sources.LANGUAGES}
_WORDS = re.compile(r"[A-Za-z]")


def _needs_entry(message):
	# Punctuation-only templates ("{0}: {1}", ", ") read the same in every language.
	return bool(_WORDS.search(sources.lookup_key(message.text)))


def test_extractor_finds_strings_of_every_kind():
	where = {m.where.split(":")[0] for m in MESSAGES}
	texts = {(m.text, m.context) for m in MESSAGES}
	assert any(w.endswith("workflow_rule.json") for w in where)
	assert any(w.endswith("condition_builder.js") for w in where)
	assert any(w.endswith("engine/describe.py") for w in where)
	assert any(w.endswith("crm_automation/workspace/crm_automation/crm_automation.json") for w in where)
	assert any(w.endswith("failing_rules.json") for w in where)
	assert any(w.endswith("hours_saved_per_week.json") for w in where)
	assert any("samples/packs" in w for w in where)
	assert ("Workflow Rule", None) in texts  # a doctype name
	assert ("Manual", "Workflow Rule") in texts  # a Select option, with its doctype as context
	assert ("Advanced Condition", "Workflow Rule") in texts  # a field label
	assert ("When a {0} is created", None) in texts  # the rule sentence
	assert ("Success %", None) in texts  # a report column
	assert len(MESSAGES) > 500


@pytest.mark.parametrize("lang", sources.LANGUAGES)
def test_every_user_facing_string_has_an_entry(lang):
	entries, _ = CATALOGUES[lang]
	missing = sorted(
		{f"{m.text!r} ({m.where})" for m in MESSAGES if _needs_entry(m) and not sources.has_entry(entries, m)}
	)
	assert not missing, (
		f"{len(missing)} strings have no {lang} entry in translations/{lang}.csv:\n" + "\n".join(missing)
	)


@pytest.mark.parametrize("lang", sources.LANGUAGES)
def test_catalogue_rows_are_well_formed(lang):
	_, malformed = CATALOGUES[lang]
	assert not malformed, f"translations/{lang}.csv rows Frappe would reject: {malformed}"


@pytest.mark.parametrize("lang", sources.LANGUAGES)
def test_translations_keep_placeholders_and_markup(lang):
	entries, _ = CATALOGUES[lang]
	wrong = []
	for key, translation in entries.items():
		source = key if key in {sources.lookup_key(m.text) for m in MESSAGES} else key.rsplit(":", 1)[0]
		if sources.placeholders(source) != sources.placeholders(translation):
			wrong.append(f"{key!r} → {translation!r}")
		for marker in ("{{", "}}", "→", "%", "<", ">"):
			if source.count(marker) != translation.count(marker):
				wrong.append(f"{key!r} → {translation!r} ({marker!r})")
	assert not wrong, "translations that drop or add placeholders or markup:\n" + "\n".join(wrong)


@pytest.mark.parametrize("lang", sources.LANGUAGES)
def test_translations_are_in_the_language(lang):
	"""An English string pasted as its own translation is not a translation (names such as URL, SMS,
	Jinja and the JSON examples stay as they are)."""
	entries, _ = CATALOGUES[lang]
	script = re.compile(r"[\u4e00-\u9fff]" if lang == "zh" else r"[\u0400-\u04ff]")
	untranslated = [
		key
		for key, translation in entries.items()
		if translation == key.rsplit(":", 1)[0] and _WORDS.search(key) and not script.search(translation)
	]
	allowed = {"URL", "HTTP {0} {1}", "{0}, URL: {1}", "SMS", "24x7", "Webhook", "Jinja: {{ doc.lead_name }}"}
	assert not [k for k in untranslated if k not in allowed]


def test_lead_is_named_as_the_issue_asks():
	assert CATALOGUES["zh"][0]["Lead"] == "线索"
	assert CATALOGUES["ru"][0]["Lead"] == "Лид"


def test_strings_are_passed_whole_to_the_translator():
	assert not VIOLATIONS, "strings built in place instead of with placeholders:\n" + "\n".join(
		f"{v.where}: {v.problem}" for v in VIOLATIONS
	)


# ------------------------------------------------------------------ the extractor itself can fail


def _python(code, tmp_path):
	path = tmp_path / "probe.py"
	path.write_text(textwrap.dedent(code), encoding="utf-8")
	messages, violations = [], []
	sources._python_messages(str(path), messages, violations)
	return messages, violations


def _js(code, tmp_path):
	path = tmp_path / "probe.js"
	path.write_text(code, encoding="utf-8")
	messages, violations = [], []
	sources._js_messages(str(path), messages, violations)
	return messages, violations


def test_python_scan_catches_built_strings(tmp_path):
	_, violations = _python(
		"""
		from frappe import _
		a = _(f"Hello {name}")
		b = _("Hello ") + name
		c = _("Hello {0}".format(name))
		d = _("Hello %s" % name)
		e = _("Warning") + ": " + text
		problems.add(path, f"unknown field {name}")
		problems.add(path, "the rule has no actions")
		problems.add(path, _("the rule has no actions"))
		""",
		tmp_path,
	)
	assert len(violations) == 7


def test_python_scan_reads_context_and_skips_variables(tmp_path):
	messages, violations = _python(
		"""
		import frappe
		from frappe import _
		a = _("Branch", context="Workflow Rule")
		b = frappe._("Save {0}").format(x)
		c = _(label)
		d = _("Open", None, "Door")
		""",
		tmp_path,
	)
	assert not violations
	assert sorted((m.text, m.context or "") for m in messages) == [
		("Branch", "Workflow Rule"),
		("Open", "Door"),
		("Save {0}", ""),
	]


def test_js_scan_handles_quotes_escapes_and_context(tmp_path):
	messages, violations = _js(
		"""
		__("Say \\"hi\\" to {0}", [name]);
		__('It\\'s {0}', [x]);
		__(`Plain`);
		__("From", null, "Workflow Rule");
		__(doc.status);
		frappe.__("not a call of ours");
		""",
		tmp_path,
	)
	assert not violations
	assert [(m.text, m.context) for m in messages] == [
		('Say "hi" to {0}', None),
		("It's {0}", None),
		("Plain", None),
		("From", "Workflow Rule"),
	]


def test_js_scan_catches_built_strings(tmp_path):
	_, violations = _js('__("Hello " + name); __(`Hi ${name}`);', tmp_path)
	assert len(violations) == 2


def test_missing_entry_and_dropped_placeholder_are_caught(tmp_path):
	(tmp_path / "zh.csv").write_text("Hello {0},你好\nBranch,分支,Workflow Rule\n", encoding="utf-8")
	entries, malformed = sources.read_catalogue("zh", str(tmp_path))
	assert not malformed
	assert sources.placeholders("Hello {0}") != sources.placeholders(entries["Hello {0}"])
	assert sources.has_entry(entries, sources.Message("Branch", "Workflow Rule", ""))
	assert not sources.has_entry(entries, sources.Message("Branch", None, ""))
	assert not sources.has_entry(entries, sources.Message("Goodbye", None, ""))


def test_keys_match_how_frappe_looks_them_up():
	assert sources.lookup_key('<span class="h4"><b>Shortcuts</b></span>') == "Shortcuts"
	assert sources.lookup_key(" Status ") == "Status"


def test_catalogue_reader_matches_frappes_csv_format(tmp_path):
	with open(tmp_path / "ru.csv", "w", encoding="utf-8", newline="") as f:
		csv.writer(f).writerows([["a, b", "а, б"], ["x", "y", "Ctx"], ["only one column"], ["z", "  "]])
	entries, malformed = sources.read_catalogue("ru", str(tmp_path))
	assert entries == {"a, b": "а, б", "x:Ctx": "y"}
	assert [row for _, row in malformed] == [["only one column"], ["z", "  "]]


def test_engine_describe_uses_the_extractable_translator():
	"""The sentence's templates are found because describe.py calls a function named _ with literals."""
	with open(sources.os.path.join(sources.APP_DIR, "engine", "describe.py"), encoding="utf-8") as f:
		tree = ast.parse(f.read())
	literal_calls = [
		node
		for node in ast.walk(tree)
		if isinstance(node, ast.Call)
		and getattr(node.func, "id", None) == "_"
		and node.args
		and isinstance(node.args[0], ast.Constant)
	]
	assert len(literal_calls) > 80


def test_sentence_translates_select_options_but_not_data():
	from crm_automation.engine.describe import describe_condition, translating

	fields = {
		"status": {"fieldname": "status", "fieldtype": "Select", "label": "Status", "options": "Open\nReplied"},
		"source": {"fieldname": "source", "fieldtype": "Data", "label": "Source"},
	}
	catalogue = {"Status": "状态", "Source": "来源", "Open": "打开", "Replied": "已回复", "{0} is {1}": "{0}为{1}"}
	catalogue["{0} is one of {1}"] = "{0}是{1}之一"
	tree = {
		"all": [
			{"field": "status", "op": "=", "value": "Open"},
			{"field": "source", "op": "=", "value": "Open"},
			{"field": "status", "op": "in", "value": ["Open", "Replied"]},
		]
	}
	with translating(lambda message: catalogue.get(message, message)):
		text = describe_condition(tree, fields)
	assert text == "状态为打开 and 来源为Open and 状态是打开, 已回复之一"
