// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

// Occurrences are written by the app only; the form is read-only.
frappe.ui.form.on("Automation Occurrence", {});
