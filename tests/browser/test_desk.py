"""The desk as an administrator sees it, in headless Chromium against the bench's web server.

scripts/run-tests.sh runs this in tier 2 with CRM_AUTOMATION_DESK_URL (a `bench serve` of the test
site) and CRM_AUTOMATION_DESK_PASSWORD (a user it made with crm_automation.tests.desk); without
them it is skipped. Screenshots go to artifacts/."""

import os
import pathlib

import pytest

URL = os.environ.get("CRM_AUTOMATION_DESK_URL")
PASSWORD = os.environ.get("CRM_AUTOMATION_DESK_PASSWORD")
USER = "crm-automation-desk@example.com"
RULE = "_Desk Check Welcome Exhibition Leads"
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent.parent / "artifacts"

pytestmark = pytest.mark.skipif(not (URL and PASSWORD), reason="needs a served site (tier 2)")


@pytest.fixture(scope="module")
def browser():
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
	wait_for(driver, "#login_email").send_keys(USER)
	driver.find_element(By.ID, "login_password").send_keys(PASSWORD)
	driver.find_element(By.CSS_SELECTOR, ".btn-login").click()
	from selenium.webdriver.support.ui import WebDriverWait

	WebDriverWait(driver, 60).until(lambda d: "/app" in d.current_url)
	ARTIFACTS.mkdir(exist_ok=True)
	yield driver
	driver.quit()


def wait_for(driver, selector, timeout=60):
	from selenium.webdriver.common.by import By
	from selenium.webdriver.support import expected_conditions
	from selenium.webdriver.support.ui import WebDriverWait

	return WebDriverWait(driver, timeout).until(
		expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, selector))
	)


def test_rule_form_reads_like_a_sentence(browser):
	"""The top of the Workflow Rule form says what the rule does in one sentence."""
	browser.get(f"{URL}/app/workflow-rule/{RULE}")
	summary = wait_for(browser, ".crm-automation-summary")
	wait_for(browser, ".crm-automation-condition")
	browser.save_screenshot(str(ARTIFACTS / "desk-workflow-rule.png"))
	assert summary.text == (
		"When a Lead is created and Source is Exhibition → "
		f"assign by round robin to {USER}, add a comment"
	)
	assert browser.execute_script("return cur_frm.is_dirty()") is False, "opening a rule must not change it"


def test_condition_builder_offers_pickers_by_fieldtype(browser):
	"""Conditions are built with a field picker and only the operators that fit the field."""
	from selenium.webdriver.common.by import By
	from selenium.webdriver.support.ui import Select

	browser.get(f"{URL}/app/workflow-rule/{RULE}")
	row = wait_for(browser, ".crm-automation-condition")
	field = Select(row.find_element(By.CSS_SELECTOR, "select.condition-field"))
	operator = Select(row.find_element(By.CSS_SELECTOR, "select.condition-op"))
	assert field.first_selected_option.get_attribute("value") == "source"
	assert operator.first_selected_option.get_attribute("value") == "="
	offered = [option.get_attribute("value") for option in operator.options if option.get_attribute("value")]
	assert "like" in offered and ">" not in offered, offered

	field.select_by_value("annual_revenue")
	row = wait_for(browser, ".crm-automation-condition")
	offered = [
		option.get_attribute("value")
		for option in Select(row.find_element(By.CSS_SELECTOR, "select.condition-op")).options
		if option.get_attribute("value")
	]
	assert ">" in offered and "between" in offered and "like" not in offered, offered
	browser.save_screenshot(str(ARTIFACTS / "desk-condition-builder.png"))


def test_workspace_shows_cards_and_links(browser):
	"""The CRM Automation workspace: the two number cards, the chart and links to every doctype."""
	browser.get(f"{URL}/app/crm-automation")
	wait_for(browser, ".widget.number-widget-box")
	wait_for(browser, ".widget.dashboard-widget-box")
	text = browser.find_element("css selector", ".layout-main-section").text.upper()  # cards show labels in capitals
	for expected in ("Hours Saved This Week", "Failing Rules", "Hours Saved per Week", "Lead Score Rule", "Escalation Policy", "Automation Efficacy"):
		assert expected.upper() in text, expected
	browser.save_screenshot(str(ARTIFACTS / "desk-workspace.png"))


def test_efficacy_report_renders(browser):
	"""The Automation Efficacy report opens with its summary and table."""
	browser.get(f"{URL}/app/query-report/Automation Efficacy")
	wait_for(browser, ".report-summary")
	summary = browser.find_element("css selector", ".report-summary").text
	for label in ("Runs", "Success Rate", "Hours Saved", "Failing Rules"):
		assert label.upper() in summary.upper(), summary
	browser.save_screenshot(str(ARTIFACTS / "desk-efficacy-report.png"))
