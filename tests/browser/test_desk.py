"""The desk as its users see it, in headless Chromium against the bench's web server.

scripts/run-tests.sh runs this in tier 2 with CRM_AUTOMATION_DESK_URL (a `bench serve` of the test
site) and CRM_AUTOMATION_DESK_PASSWORD (the users crm_automation.tests.desk made); without them it is
skipped. Screenshots go to artifacts/. Every check waits for content (a sentence, a number), never
for a container alone: containers appear before what they hold ("Loading...")."""

import os
import pathlib
import re

import pytest

URL = os.environ.get("CRM_AUTOMATION_DESK_URL")
PASSWORD = os.environ.get("CRM_AUTOMATION_DESK_PASSWORD")
USER = "crm-automation-desk@example.com"
MANAGER = "crm-automation-desk-manager@example.com"
RULE = "_Desk Check Welcome Exhibition Leads"
BRANCH_RULE = "_Desk Check Route Leads by Source"
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent.parent / "artifacts"
TIMEOUT = 60

# The sentences the form reads out, per language of the desk user. zh and ru join this table with
# the translations (and a desk user in that language); the tests take the language as a parameter.
SENTENCES = {
	"en": {
		RULE: "When a Lead is created and Source is Exhibition → assign round robin to Desk Check, add a comment",
		BRANCH_RULE: (
			"When a Lead is saved and Unsubscribed is not checked → "
			"if Source is Exhibition → e-mail '_Desk Check Welcome (Exhibition)' to the Lead's Email, "
			"assign round robin to Li Zhou, Desk Check; otherwise → add a comment; "
			"in 24 hours, if Status is Open: create a ToDo for the owner"
		),
	},
}
LANGUAGES = sorted(SENTENCES)

pytestmark = pytest.mark.skipif(not (URL and PASSWORD), reason="needs a served site (tier 2)")


def start_browser(user):
	from selenium import webdriver
	from selenium.webdriver.chrome.service import Service
	from selenium.webdriver.common.by import By

	options = webdriver.ChromeOptions()
	options.binary_location = "/usr/bin/chromium"
	for argument in (
		"--headless=new",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--no-first-run",
		"--window-size=1400,1800",
	):
		options.add_argument(argument)
	driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
	driver.get(f"{URL}/login")
	wait_for(driver, "#login_email").send_keys(user)
	driver.find_element(By.ID, "login_password").send_keys(PASSWORD)
	driver.find_element(By.CSS_SELECTOR, ".btn-login").click()
	wait_until(driver, lambda d: "/app" in d.current_url, "the desk after login")
	ARTIFACTS.mkdir(exist_ok=True)
	return driver


@pytest.fixture(scope="module")
def browser():
	driver = start_browser(USER)
	yield driver
	driver.quit()


@pytest.fixture(scope="module")
def manager_browser():
	driver = start_browser(MANAGER)
	yield driver
	driver.quit()


def wait_for(driver, selector, timeout=TIMEOUT):
	from selenium.webdriver.common.by import By
	from selenium.webdriver.support import expected_conditions
	from selenium.webdriver.support.ui import WebDriverWait

	return WebDriverWait(driver, timeout).until(
		expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector))
	)


def wait_until(driver, condition, what, timeout=TIMEOUT):
	from selenium.webdriver.support.ui import WebDriverWait

	return WebDriverWait(driver, timeout).until(condition, message=f"waited {timeout}s for {what}")


def js(driver, script, *args):
	return driver.execute_script(script, *args)


def open_rule(driver, name):
	"""The rule's form with its sentence written (not the "Choose ..." placeholder, not empty)."""
	from selenium.common.exceptions import TimeoutException

	def shown(d):
		return js(d, "return window.cur_frm && cur_frm.docname") == name and js(
			d, "return $('.crm-automation-summary:visible').text().trim()"
		)

	driver.get(f"{URL}/app/workflow-rule/{name}")
	try:
		wait_until(driver, shown, f"the sentence of {name}")
	except TimeoutException:
		# `bench serve` is one process: a request stuck behind another (a cold asset, a slow
		# lookup) can leave the form half loaded. One reload, then the same wait decides.
		driver.save_screenshot(str(ARTIFACTS / f"desk-slow-{re.sub(r'[^A-Za-z0-9]+', '-', name)}.png"))
		driver.refresh()
		wait_until(driver, shown, f"the sentence of {name} (after a reload)")
	wait_for(driver, ".crm-automation-condition")
	return js(driver, "return $('.crm-automation-summary:visible').text().trim()")


def visible_fields(driver):
	return js(
		driver,
		"""return cur_frm.layout.wrapper.find('.frappe-control:visible').toArray()
			.map((el) => el.getAttribute('data-fieldname')).filter(Boolean)""",
	)


VISIBLE_EDITORS = """return cur_frm.layout.wrapper.find(
	'.frappe-control[data-fieldtype="JSON"]:visible, .frappe-control[data-fieldtype="Code"]:visible, .ace_editor:visible'
).toArray().map((el) => el.getAttribute('data-fieldname') || el.className)"""


@pytest.mark.parametrize("language", LANGUAGES)
def test_rule_form_reads_like_a_sentence(browser, language):
	"""The top of the Workflow Rule form says what the rule does in one sentence."""
	summary = open_rule(browser, RULE)
	browser.save_screenshot(str(ARTIFACTS / f"desk-workflow-rule-{language}.png"))
	assert summary == SENTENCES[language][RULE]
	assert js(browser, "return cur_frm.is_dirty()") is False, "opening a rule must not change it"


@pytest.mark.parametrize("language", LANGUAGES)
def test_rule_with_branches_and_a_step_reads_like_a_sentence(browser, language):
	"""Branches read "if ... → ...; otherwise → ...", a Check reads "is not checked", the e-mail names
	its template and recipient, the round robin its users by name, the step its wait and condition."""
	summary = open_rule(browser, BRANCH_RULE)
	browser.save_screenshot(str(ARTIFACTS / f"desk-workflow-rule-branches-{language}.png"))
	assert summary == SENTENCES[language][BRANCH_RULE]
	columns = "return cur_frm.fields_dict.actions.grid.wrapper.find('.grid-heading-row').text()"
	assert "Branch" in js(browser, columns)
	rows = js(browser, "return cur_frm.doc.actions.map((a) => a.action_summary)")
	assert rows[0] == "e-mail '_Desk Check Welcome (Exhibition)' to the Lead's Email", rows
	assert js(browser, "return cur_frm.is_dirty()") is False


def test_plain_rule_shows_no_json_or_python_editor(browser):
	"""A user who is not a System Manager sees the builder and the sentence: no JSON, no Python."""
	open_rule(browser, RULE)
	assert js(browser, VISIBLE_EDITORS) == []
	shown = visible_fields(browser)
	for hidden in ("conditions", "condition_expression", "stop_conditions", "section_advanced"):
		assert hidden not in shown, hidden
	assert "conditions_html" in shown and "actions" in shown, shown
	# branch and step columns mean nothing on a rule without branches or steps
	assert js(browser, "return cur_frm.fields_dict.actions.grid.get_docfield('branch').hidden") == 1
	columns = "return cur_frm.fields_dict.actions.grid.wrapper.find('.grid-heading-row').text()"
	assert "Branch" not in js(browser, columns) and "Action" in js(browser, columns)


def test_branch_conditions_are_edited_with_the_builder_not_json(browser):
	open_rule(browser, BRANCH_RULE)
	js(browser, "cur_frm.fields_dict.branches.grid.grid_rows[0].show_form()")
	wait_until(
		browser,
		lambda d: js(d, "return $('.grid-row-open .crm-automation-condition:visible').length") > 0,
		"the branch row's condition builder",
	)
	editors = js(
		browser,
		"return $('.grid-row-open .frappe-control[data-fieldtype=\"JSON\"]:visible, .grid-row-open .ace_editor:visible').length",
	)
	browser.save_screenshot(str(ARTIFACTS / "desk-workflow-rule-branch-row.png"))
	assert editors == 0
	js(browser, "cur_frm.fields_dict.branches.grid.grid_rows[0].hide_form()")


def test_step_conditions_are_edited_with_labelled_builders(browser):
	"""A follow-up step's "Only if" is a builder with its title; "Wait until" shows only for an
	Until Condition wait; no JSON in the row."""
	open_rule(browser, BRANCH_RULE)
	js(browser, "cur_frm.scroll_to_field('steps'); cur_frm.fields_dict.steps.grid.grid_rows[0].show_form()")
	wait_until(
		browser,
		lambda d: (
			js(
				d,
				"return $('.grid-row-open .crm-automation-step-builder:visible .crm-automation-condition').length",
			)
			> 0
		),
		"the step's Only if builder",
	)
	browser.save_screenshot(str(ARTIFACTS / "desk-workflow-rule-step-row.png"))
	builders = js(
		browser,
		"return $('.grid-row-open .crm-automation-step-builder:visible').toArray().map((el) => el.innerText)",
	)
	assert len(builders) == 1 and builders[0].startswith("Only if"), builders
	editors = "return $('.grid-row-open .frappe-control[data-fieldtype=\"JSON\"]:visible, .grid-row-open .ace_editor:visible').length"
	assert js(browser, editors) == 0
	js(
		browser,
		"const row = cur_frm.doc.steps[0]; frappe.model.set_value(row.doctype, row.name, 'wait_type', 'Until Condition')",
	)
	wait_until(
		browser,
		lambda d: js(d, "return $('.grid-row-open .crm-automation-step-builder:visible').length") == 2,
		"the Wait until builder of an Until Condition step",
	)
	assert js(browser, editors) == 0
	js(browser, "cur_frm.fields_dict.steps.grid.grid_rows[0].hide_form()")


def test_system_manager_finds_the_stored_rule_under_advanced(manager_browser):
	"""For a System Manager the stored JSON and the Python condition sit in a collapsed "Advanced"
	section; the JSON is read-only (the builder writes it)."""
	open_rule(manager_browser, RULE)
	section = js(manager_browser, "return cur_frm.fields_dict.section_advanced.wrapper.is(':visible')")
	assert section is True
	assert js(manager_browser, VISIBLE_EDITORS) == [], "collapsed until opened"
	js(manager_browser, "cur_frm.scroll_to_field('conditions')")
	wait_until(
		manager_browser,
		lambda d: js(d, "return cur_frm.fields_dict.conditions.$wrapper.is(':visible')"),
		"the Advanced section to open",
	)
	manager_browser.save_screenshot(str(ARTIFACTS / "desk-workflow-rule-advanced.png"))
	assert "conditions" in js(manager_browser, VISIBLE_EDITORS), "the check finds an editor when one shows"
	assert js(manager_browser, "return cur_frm.get_docfield('conditions').read_only") == 1
	assert (
		js(manager_browser, "return cur_frm.fields_dict.condition_expression.$wrapper.is(':visible')") is True
	)


def test_new_rule_asks_for_document_type_and_trigger_first(browser):
	"""A new rule shows what to choose first; conditions and actions come once a document type is
	chosen, and only the fields that apply to the trigger and the action type."""
	browser.get(f"{URL}/app/workflow-rule/new")
	wait_until(
		browser,
		lambda d: js(d, "return window.cur_frm && cur_frm.is_new() && cur_frm.doctype") == "Workflow Rule",
		"a new rule",
	)
	wait_for(browser, '.frappe-control[data-fieldname="document_type"] input')
	wait_until(
		browser,
		lambda d: (
			"Choose a document type" in js(d, "return cur_frm.fields_dict.rule_summary.$wrapper.text()")
		),
		"the first step in words",
	)
	shown = visible_fields(browser)
	browser.save_screenshot(str(ARTIFACTS / "desk-workflow-rule-new.png"))
	assert shown.index("document_type") < shown.index("rule_name"), shown
	assert "trigger" in shown
	for later in (
		"conditions_html",
		"actions",
		"branches",
		"steps",
		"time_field",
		"trigger_field",
		"priority",
	):
		assert later not in shown, later

	js(browser, "cur_frm.set_value({document_type: 'Lead', trigger: 'Time'})")
	wait_until(
		browser, lambda d: "actions" in visible_fields(d), "the actions once a document type is chosen"
	)
	wait_until(browser, lambda d: "time_field" in visible_fields(d), "the date field of a Time trigger")
	assert "trigger_field" not in visible_fields(browser)
	js(browser, "cur_frm.set_value('trigger', 'Value Change')")
	wait_until(browser, lambda d: "trigger_field" in visible_fields(d), "the field of a Value Change trigger")
	assert "time_field" not in visible_fields(browser)
	browser.save_screenshot(str(ARTIFACTS / "desk-workflow-rule-new-chosen.png"))

	# Validate runs before the save: its actions can only set values or reject.
	action_types = "return cur_frm.fields_dict.actions.grid.get_docfield('action_type').options.split('\\n')"
	js(browser, "cur_frm.set_value('trigger', 'Validate')")
	wait_until(browser, lambda d: "Webhook" not in js(d, action_types), "the actions Validate can run")
	assert {"Set Value", "Reject"} <= set(js(browser, action_types))
	js(browser, "cur_frm.set_value('trigger', 'Save')")
	wait_until(browser, lambda d: "Webhook" in js(d, action_types), "the actions of a Save rule")
	assert "Reject" not in js(browser, action_types)

	# An Assign row asks for users, a role or a field, depending on whom it assigns to.
	index = js(
		browser,
		"""const row = cur_frm.add_child('actions', {action_type: 'Assign'});
		cur_frm.refresh_field('actions');
		return row.idx - 1""",
	)
	wait_until(
		browser,
		lambda d: js(d, f"return !!cur_frm.fields_dict.actions.grid.grid_rows[{index}]"),
		"the new action row",
	)
	js(browser, f"cur_frm.fields_dict.actions.grid.grid_rows[{index}].show_form()")
	row_fields = """return $('.grid-row-open .frappe-control:visible').toArray()
		.map((el) => el.getAttribute('data-fieldname')).filter(Boolean)"""
	wait_until(browser, lambda d: "assign_to_type" in js(d, row_fields), "the action row form")
	shown = js(browser, row_fields)
	assert "to_users" in shown and "assign_strategy" in shown, shown
	for other in ("to_role", "user_group", "url", "email_template", "sms_message", "branch", "step"):
		assert other not in shown, (other, shown)
	js(
		browser,
		f"const row = cur_frm.doc.actions[{index}]; frappe.model.set_value(row.doctype, row.name, 'assign_to_type', 'Role')",
	)
	wait_until(browser, lambda d: "to_role" in js(d, row_fields), "the role picker of Assign to Role")
	assert "to_users" not in js(browser, row_fields)
	js(
		browser,
		f"const row = cur_frm.doc.actions[{index}]; frappe.model.set_value(row.doctype, row.name, 'action_type', 'Send Email')",
	)
	wait_until(browser, lambda d: "email_template" in js(d, row_fields), "the e-mail fields of Send Email")
	shown = js(browser, row_fields)
	assert "to_users" in shown and "assign_strategy" not in shown and "url" not in shown, shown
	browser.save_screenshot(str(ARTIFACTS / "desk-workflow-rule-new-action.png"))
	js(browser, f"cur_frm.fields_dict.actions.grid.grid_rows[{index}].hide_form()")


def test_condition_builder_offers_pickers_by_fieldtype(browser):
	"""Conditions are built with a field picker and only the operators that fit the field."""
	from selenium.webdriver.common.by import By
	from selenium.webdriver.support.ui import Select

	open_rule(browser, RULE)
	row = wait_for(browser, ".crm-automation-condition")
	field = Select(row.find_element(By.CSS_SELECTOR, "select.condition-field"))
	operator = Select(row.find_element(By.CSS_SELECTOR, "select.condition-op"))
	assert field.first_selected_option.get_attribute("value") == "source"
	assert operator.first_selected_option.get_attribute("value") == "="
	offered = [option.get_attribute("value") for option in operator.options if option.get_attribute("value")]
	assert "like" in offered and ">" not in offered, offered

	# the sentence follows the builder before anything is saved
	operator.select_by_value("is set")
	wait_until(
		browser,
		lambda d: "Source is set →" in js(d, "return $('.crm-automation-summary:visible').text()"),
		"the sentence to follow the changed operator",
	)
	row = wait_for(browser, ".crm-automation-condition")
	field = Select(row.find_element(By.CSS_SELECTOR, "select.condition-field"))
	field.select_by_value("annual_revenue")
	row = wait_for(browser, ".crm-automation-condition")
	offered = [
		option.get_attribute("value")
		for option in Select(row.find_element(By.CSS_SELECTOR, "select.condition-op")).options
		if option.get_attribute("value")
	]
	assert ">" in offered and "between" in offered and "like" not in offered, offered
	browser.save_screenshot(str(ARTIFACTS / "desk-condition-builder.png"))


NUMBERS_SHOWN = """const cards = $('.widget.number-widget-box');
	return cards.length >= 2 && cards.toArray().every((card) => /\\d/.test($(card).find('.number').text()))"""


def test_workspace_shows_cards_and_links(browser):
	"""The CRM Automation workspace: the two number cards with their numbers, the chart and links to
	every doctype."""
	browser.get(f"{URL}/app/crm-automation")
	wait_until(browser, lambda d: js(d, NUMBERS_SHOWN), "numbers in the number cards")
	expected = (
		"Hours Saved This Week",
		"Failing Rules",
		"Hours Saved per Week",
		"Lead Score Rule",
		"Escalation Policy",
		"Automation Efficacy",
	)

	def page_text(d):
		return d.find_element(
			"css selector", ".layout-main-section"
		).text.upper()  # cards show labels in capitals

	wait_until(
		browser, lambda d: all(label.upper() in page_text(d) for label in expected), f"the texts {expected}"
	)
	text = page_text(browser)
	assert "LOADING..." not in text
	for number in js(
		browser, "return $('.widget.number-widget-box .number').toArray().map((el) => el.textContent.trim())"
	):
		assert re.search(r"\d", number), number
	browser.save_screenshot(str(ARTIFACTS / "desk-workspace.png"))


def test_efficacy_report_renders(browser):
	"""The Automation Efficacy report opens with its summary and table."""
	browser.get(f"{URL}/app/query-report/Automation Efficacy")
	labels = ("Runs", "Success Rate", "Hours Saved", "Failing Rules")
	wait_until(
		browser,
		lambda d: all(
			label.upper() in js(d, "return $('.report-summary').text()").upper() for label in labels
		),
		f"the report summary with {labels}",
	)
	browser.save_screenshot(str(ARTIFACTS / "desk-efficacy-report.png"))
