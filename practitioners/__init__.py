"""The practitioner directory (RPPS) and professions."""
