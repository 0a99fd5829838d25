// Copyright (c) 2026, crm_automation developers and contributors
// For license information, please see license.txt

frappe.listview_settings["Automation Sequence Step"] = {
	get_indicator(doc) {
		const colors = {
			Pending: "blue",
			Running: "orange",
			Done: "green",
			Skipped: "gray",
			Exited: "gray",
			Cancelled: "gray",
			Missed: "orange",
			Failed: "red",
		};
		return [__(doc.status), colors[doc.status] || "gray", `status,=,${doc.status}`];
	},
};
