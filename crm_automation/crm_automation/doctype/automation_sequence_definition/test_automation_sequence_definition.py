# Copyright (c) 2026, crm_automation developers and contributors
# For license information, please see license.txt

# Versions are created and used by crm_automation.sequences.steps; see
# crm_automation/crm_automation/doctype/automation_sequence_step/test_automation_sequence_step.py
# (test_rule_edited_mid_flight_keeps_the_started_version).
