"""The site's history export and the automation proposals mined from it."""
