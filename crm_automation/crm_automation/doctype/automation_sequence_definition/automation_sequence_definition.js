// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

// Versions of a rule's sequence are stored by the app and never edited.
frappe.ui.form.on("Automation Sequence Definition", {});
