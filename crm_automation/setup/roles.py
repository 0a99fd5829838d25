"""The roles this app installs, by name: install creates them, trust/roles.py says what they may do.
Plain data, so that setup (the ground floor) and everything above it can name them."""

SYSTEM_MANAGER = "System Manager"
RULE_MANAGER_ROLE = "CRM Automation Manager"
RULE_MANAGER_ROLES = (RULE_MANAGER_ROLE, SYSTEM_MANAGER)
# API users that send behaviour signals on records they may read but not change.
INTEGRATION_ROLE = "CRM Automation Integration"
