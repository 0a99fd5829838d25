frappe.listview_settings["Automation Log"] = {
	get_indicator(doc) {
		const colors = { Success: "green", Skipped: "gray", Failed: "red", Rejected: "orange", "Dry Run": "blue", "Held Out": "purple" };
		return [__(doc.outcome), colors[doc.outcome] || "gray", "outcome,=," + doc.outcome];
	},
};
