// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

// Rows are written by the app only (runtime/groups.py); the form is read-only.
frappe.ui.form.on("Automation Group Member", {});
