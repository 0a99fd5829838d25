frappe.provide("frappe.dashboards.chart_sources");

frappe.dashboards.chart_sources["Hours Saved"] = {
	method: "crm_automation.crm_automation.dashboard_chart_source.hours_saved.hours_saved.get",
	filters: [],
};
