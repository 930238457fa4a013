"""Who may see what: the one door to patient data, the rule tables, and the tamper-evident trail."""
