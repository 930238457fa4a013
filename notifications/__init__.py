"""Notices to patients (the outbox) and their delivery by e-mail or postal letter."""
