// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.ui.form.on("CRM Activity Type", {});
